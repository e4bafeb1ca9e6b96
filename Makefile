# pgtls — quick start: `make demo` runs the server, `make test` runs the whole suite, `make check` the fast checks.
VENV ?= .venv
# The interpreter the venv is made with: the distribution's /usr/bin/python3 when it is 3.11+ and can make
# venvs (Debian: python3.11-venv), else python3 from PATH.  On the benchmark machine Debian's build costs
# 5-7% less server CPU than the PATH's pyenv build (bench/README.md, "The interpreter build").
PYTHON ?= $(shell /usr/bin/python3 -c 'import ensurepip, sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo /usr/bin/python3 || echo python3)
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test check venv system-deps node-deps lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# Debian packages the tests need (PostgreSQL 15 server and client for the differential tests).
system-deps:
	bash scripts/install-system-deps.sh

# npm pg (+ pg-copy-streams, pg-cursor) for the client scenario tests, into tests/clients/node_modules
node-deps: system-deps
	bash scripts/install-node-deps.sh

demo: venv
	$(PY) -m pgtls.demo $(if $(PORT),--port $(PORT),)

test: venv system-deps node-deps
	$(VENV)/bin/ruff check pgtls tests bench
	$(VENV)/bin/ruff format --check pgtls tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

# The fast checks before a commit (under a minute on 2 cores; installs no Debian packages): lint, types
# (mypy over pgtls/, configured in pyproject.toml) and the unit tests that are quick by construction.
# Which unit tests: all of tests/unit except
#   - tests/unit/embedded/ with all its subdirectories: the DuckDB backend's tests, most of which open DuckDB
#     sessions (four fifths of tests/unit's time);
#   - property-based tests: the `hypothesis` marker, which Hypothesis's pytest plugin puts on every
#     @given test (hundreds of generated examples each);
#   - tests that need a PostgreSQL server: the `pg` marker.
# `make test` runs all of them.
CHECK_TESTS := tests/unit --ignore=tests/unit/embedded -m 'not hypothesis and not pg'

check: venv
	$(VENV)/bin/ruff check pgtls tests bench
	$(VENV)/bin/ruff format --check pgtls tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -p no:cacheprovider -q -x $(CHECK_TESTS)

lint: venv
	$(VENV)/bin/ruff check pgtls tests bench

bench: venv
	bash scripts/install-system-deps.sh --bench
	$(PY) bench/compare.py

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache
