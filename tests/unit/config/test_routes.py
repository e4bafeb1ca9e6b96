"""pgtls_databases.conf: PgBouncer's [databases] lines with libpq connection strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pgtls.config.routes import Routes, RoutesError, load_routes, parse_routes

GOOD = "\n".join(
    [
        "; routes",
        "# another comment",
        "[databases]",
        "app    = host=db1,db2 target_session_attrs=read-write pool_size=5",
        "app_ro = host=db1,db2 target_session_attrs=prefer-standby dbname=app",
        '"my ""db""" = postgresql://u@db3:6432/other?sslmode=verify-full',
        "pw = host=db4 password='a;b#c' user=svc",
        "* = host=db5",
    ]
)


def test_good_file():
    r = parse_routes(GOOD, "routes.conf")
    assert set(r.by_name) == {"app", "app_ro", 'my "db"', "pw"}
    assert r.lookup("app").params == {"host": "db1,db2", "target_session_attrs": "read-write"}
    assert r.lookup("app").pool == {"pool_size": 5}
    assert r.lookup("app").upstream_params("app")["dbname"] == "app"
    assert r.lookup("app_ro").upstream_params("app_ro")["dbname"] == "app"
    assert r.lookup('my "db"').params == {
        "user": "u",
        "host": "db3",
        "port": "6432",
        "dbname": "other",
        "sslmode": "verify-full",
    }
    assert r.lookup("pw").params["password"] == "a;b#c"
    fallback = r.lookup("anything")
    assert fallback is not None and fallback.upstream_params("anything") == {
        "host": "db5",
        "dbname": "anything",
    }


def test_no_fallback_means_no_route():
    r = parse_routes("app = host=x\n", "f")
    assert r.lookup("other") is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("app host=x", 'invalid route "app host=x": missing "=" after the database name'),
        ("= host=x", 'invalid route "= host=x": missing database name'),
        ("app = hots=x", 'invalid route "app = hots=x": invalid connection option "hots"'),
        (
            "app = host='x",
            'invalid route "app = host=\'x": unterminated quoted string in connection info string',
        ),
        ('"app = host=x', 'invalid route "\\"app = host=x": unterminated quoted database name'),
        ("app = host=x pool_size=-1", 'invalid value for pool_size: "-1" (a non-negative integer)'),
        ("[pgbouncer]", 'unknown section "[pgbouncer]"'),
        (
            "app = postgresql://h/?x=1",
            'invalid route "app = postgresql://h/?x=1": invalid URI query parameter: "x"',
        ),
    ],
)
def test_bad_lines_name_file_and_line(line, message):
    with pytest.raises(RoutesError) as e:
        parse_routes(f"ok = host=a\n\n{line}\n", "/d/pgtls_databases.conf")
    [err] = e.value.errors
    assert err.lineno == 3
    assert err.message == message.replace('\\"', '"')
    assert str(e.value).endswith('CONTEXT:  line 3 of configuration file "/d/pgtls_databases.conf"')


def test_every_bad_line_is_reported_and_duplicates_refused():
    with pytest.raises(RoutesError) as e:
        parse_routes("a = host=x\na = host=y\n* = host=z\n* = host=w\nb = bad=1\n", "f")
    assert [(x.lineno, x.message) for x in e.value.errors] == [
        (2, 'duplicate route for database "a"'),
        (4, 'duplicate route for database "*"'),
        (5, 'invalid route "b = bad=1": invalid connection option "bad"'),
    ]


def test_missing_file_and_too_large(tmp_path):
    assert load_routes(tmp_path / "none.conf") is None
    big = tmp_path / "big.conf"
    big.write_bytes(b"; x\n" * 300_000)
    with pytest.raises(RoutesError, match="is too large"):
        load_routes(big)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_routes_or_clean_error(text):
    try:
        assert isinstance(parse_routes(text, "f"), Routes)
    except RoutesError as e:
        assert e.errors and all(x.lineno >= 1 for x in e.errors)


def test_pool_mode_per_route(tmp_path):
    from pgtls.backends.relay import routing

    (tmp_path / "pgtls_databases.conf").write_text(
        "tx = host=db1 sslmode=disable pool_mode=transaction\n* = host=db2 sslmode=disable\n"
    )
    routes = routing.load(tmp_path, "")
    assert routes.target("tx").pool_mode == "transaction" and "pool_mode" not in routes.target("tx").params
    assert routes.target("other").pool_mode == ""  # the pool_mode setting's
    (tmp_path / "pgtls_databases.conf").write_text("tx = host=db1 sslmode=disable pool_mode=transaction\n")
    fallback = routing.load(
        tmp_path, "host=db3 sslmode=disable pool_mode=session"
    ).fallback  # the upstream setting
    assert fallback is not None and fallback.pool_mode == "session"
    (tmp_path / "pgtls_databases.conf").write_text(
        "ok = host=db1 sslmode=disable\nbad = host=db1 sslmode=disable pool_mode=statement\n"
    )
    with pytest.raises(routing.RouterError) as e:
        routing.load(tmp_path, "")
    assert e.value.errors[0].lineno == 2
    assert 'invalid value for pool_mode: "statement" (session or transaction)' in str(e.value)
