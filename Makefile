# pgtls — quick start: `make demo` runs the server, `make test` runs the whole suite.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test venv system-deps node-deps lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
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
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check pgtls tests bench

bench: venv
	bash scripts/install-system-deps.sh --bench
	$(PY) bench/compare.py

clean:
	rm -rf $(VENV) demo-data .pytest_cache
