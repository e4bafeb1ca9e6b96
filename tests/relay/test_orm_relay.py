"""Unmodified application stacks through the relay: Django 5 and SQLAlchemy 2 (psycopg 3) talk to pgtls over
TLS (sslmode=verify-full with the test CA, a ``hostssl`` pg_hba.conf, SCRAM), and pgtls relays them to its
managed PostgreSQL 18 as the application's own role ``app`` (a non-superuser with CREATEDB, owner of its
databases).  The very same steps run against the same PostgreSQL 18 directly (the same role, database
and SCRAM; no TLS: that build has no OpenSSL), and what the application observes must be identical.

Django runs in two child processes, one per server (``python -m tests.relay.test_orm_relay``): a fresh
Django each, so this module neither depends on nor disturbs the in-process Django of
tests/integration/test_orm_django.py.  Each child migrates contenttypes, auth, sessions, admin and
tests/django_app (whose second migration reshapes tables), runs the ORM steps below (create, query, FK,
M2M, IntegrityError, atomic and savepoints, JSONField, sessions, admin log) and Django's test-database
life cycle (create + migrate, clone WITH TEMPLATE as ``test --parallel`` does, destroy): CREATE/DROP
DATABASE must work through pgtls although its pool keeps idle sessions in those databases.

SQLAlchemy runs in process: Core and ORM (identity keys, RETURNING, relationships, selectin loading,
SAVEPOINTs, executemany, jsonb and arrays) and ``inspect()`` reflection (columns, primary keys, foreign
keys, indexes, unique and check constraints, comments) of the constraint catalog's schema.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from time import sleep
from typing import Any

import pytest

from tests import prereq

sqlalchemy = prereq.importorskip("sqlalchemy")
prereq.importorskip("django")

from sqlalchemy import ForeignKey, String, create_engine, func, inspect, select, text  # noqa: E402
from sqlalchemy.dialects.postgresql import ARRAY, JSONB  # noqa: E402
from sqlalchemy.exc import IntegrityError  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload  # noqa: E402

from tests.clients.harness import PG_SETTINGS  # noqa: E402
from tests.constraint_schema import PG_FKS, SCHEMA, TABLES, USER_COMMENT  # noqa: E402
from tests.django_app import steps  # noqa: E402
from tests.django_app.steps import WHEN  # noqa: E402
from tests.pgserver import RealPostgres, managed_pg_bin  # noqa: E402
from tests.pgtlsserver import PgtlsServer, quote_literal, tls_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP_ROLE, APP_PASSWORD = "app", "app-secret-42"
DJANGO_DB, SA_DB = "app", "sa"  # databases owned by APP_ROLE: Django's and SQLAlchemy's
# Only TLS from TCP; the application's role with SCRAM, the bootstrap superuser (setup) trusted.
RELAY_HBA = ("local all all trust\n"
             f"hostssl all {APP_ROLE} 127.0.0.1/32 scram-sha-256\n"
             "hostssl all all 127.0.0.1/32 trust\n")  # fmt: skip
DIRECT_HBA = ("local all all trust\n"
              f"host all {APP_ROLE} 127.0.0.1/32 scram-sha-256\n"
              "host all all 127.0.0.1/32 trust\n")  # fmt: skip
SETUP_SQL = [
    f"SET password_encryption = 'scram-sha-256'; CREATE ROLE {APP_ROLE} LOGIN CREATEDB "
    f"PASSWORD {quote_literal(APP_PASSWORD)}",
    f"CREATE DATABASE {DJANGO_DB} OWNER {APP_ROLE}",
    f"CREATE DATABASE {SA_DB} OWNER {APP_ROLE}",
]
CHILD_TIMEOUT = 150
# What a step saw of pgtls's client-identity functions (sslinfo's names, pgtls/backends/relay/identity.py): there
# through pgtls only, by design, so compared on their own.
IDENTITY_KEY = "pgtls_identity"
# Django closes its connection to a database and at once runs CREATE DATABASE ... TEMPLATE / DROP DATABASE on it
# from another one: the session pgtls is still resetting then must not return to the pool
# (test_create_database_from_a_template_just_left).  No pause before such commands.
RELEASE_PAUSE = 0.0


# ================================================================ servers


@dataclass
class Servers:
    relay: PgtlsServer
    direct: RealPostgres
    rootcert: str
    home: Path

    def sa_url(self, which: str, database: str = SA_DB) -> str:
        if which == "relay":
            return (f"postgresql+psycopg://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{self.relay.port}/{database}"
                    f"?sslmode=verify-full&sslrootcert={self.rootcert}")  # fmt: skip
        return f"postgresql+psycopg://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{self.direct.port}/{database}?sslmode=disable"

    def libpq(self, which: str, database: str) -> str:
        tls = f"sslmode=verify-full sslrootcert={self.rootcert}" if which == "relay" else "sslmode=disable"
        port = self.relay.port if which == "relay" else self.direct.port
        return f"host=127.0.0.1 port={port} user={APP_ROLE} password={APP_PASSWORD} dbname={database} {tls}"

    def django_db(self, which: str) -> dict[str, Any]:
        port = self.relay.port if which == "relay" else self.direct.port
        options = ({"sslmode": "verify-full", "sslrootcert": self.rootcert} if which == "relay"
                   else {"sslmode": "disable"})  # fmt: skip
        return {"ENGINE": "django.db.backends.postgresql", "NAME": DJANGO_DB, "USER": APP_ROLE,
                "PASSWORD": APP_PASSWORD, "HOST": "127.0.0.1", "PORT": port, "CONN_MAX_AGE": 0,
                "OPTIONS": options}  # fmt: skip


@pytest.fixture(scope="module")
def servers(certs, client_home) -> Iterator[Servers]:
    import psycopg

    direct = RealPostgres(bindir=managed_pg_bin())
    relay: PgtlsServer | None = None
    try:
        direct.init()
        direct.write("pg_hba.conf", DIRECT_HBA)
        with open(direct.datadir / "postgresql.conf", "a") as f:
            f.write(PG_SETTINGS)
        direct.start()
        with psycopg.connect(f"host=127.0.0.1 port={direct.port} user=postgres dbname=postgres",
                             autocommit=True) as c:  # fmt: skip
            for sql in SETUP_SQL:
                c.execute(sql)
        relay = tls_server(certs, hba=RELAY_HBA, start=False)
        with open(relay.datadir / "cluster" / "postgresql.conf", "a") as f:
            f.write(PG_SETTINGS)
        for sql in SETUP_SQL:
            relay.sql(sql)  # run as the cluster's superuser once pgtls is up
        relay.start()
        yield Servers(relay, direct, certs.path("root_ca.crt"), client_home)
    finally:
        if relay is not None:
            print(f"--- pgtls server log ---\n{relay.full_log()[-6000:]}")  # shown only on failure
            relay.cleanup()
        direct.cleanup()


@pytest.fixture(autouse=True)
def _libpq_home(monkeypatch, client_home) -> None:
    """In-process libpq (SQLAlchemy, psycopg): no ~/.postgresql files (the Django children get the same HOME)."""
    monkeypatch.setenv("HOME", str(client_home))


# ================================================================ Django: the steps (run in a child process)

DJANGO_STEPS: dict[str, Callable[[str], Any]] = {}


def django_step(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    DJANGO_STEPS[fn.__name__] = fn
    return fn


@django_step
def schema(alias: str) -> dict[str, object]:
    from django.db import connections

    conn = connections[alias]
    with conn.cursor() as cur:
        cur.execute("SELECT app, name FROM django_migrations ORDER BY id")
        migrations = cur.fetchall()
        tables = sorted(conn.introspection.table_names(cur))
        columns, constraints = {}, {}
        for t in ("django_content_type", "auth_user", "shop_customer", "shop_order", "shop_order_tags"):
            cur.execute(
                "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default "
                "FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                [t],
            )
            columns[t] = cur.fetchall()
            constraints[t] = sorted(conn.introspection.get_constraints(cur, t).items())
        cur.execute("SELECT current_user, session_user, current_database(), "
                    "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")  # fmt: skip
        who = cur.fetchone()
    return {
        "migrations": migrations,
        "tables": tables,
        "columns": columns,
        "constraints": constraints,
        "who": who,
    }


users_groups_and_permissions = django_step(steps.users_groups_and_permissions)


def _shop(alias: str) -> None:
    """The shop of the steps below, its orders' JSON data with a list of tags (see json_field)."""
    steps.shop(alias, tags_in_data=True)


@django_step
def foreign_keys_many_to_many_and_lookups(alias: str) -> dict[str, object]:
    _shop(alias)
    return {
        **steps.foreign_keys_many_to_many_and_lookups(alias),
        **steps.annotations_grouped_by_primary_key(alias),
    }


@django_step
def querysets_filters_aggregates_and_ordering(alias: str) -> dict[str, object]:
    from django.db.models import Avg, Count, F, Max, Min, Q, Sum

    from tests.django_app.models import Customer, Order

    _shop(alias)
    orders = Order.objects.using(alias)
    return {
        "agg": orders.aggregate(sum=Sum("total"), top=Max("total"), low=Min("total"), n=Count("id"), avg=Avg("total")),
        "q": sorted(orders.filter(Q(total__gte=10) | Q(number="N2")).exclude(number="N1")
                    .values_list("number", flat=True)),
        "icontains": list(Customer.objects.using(alias).filter(display_name__icontains="RAC")
                          .values_list("email", flat=True)),
        "in_range": list(orders.filter(placed__range=(WHEN.replace(day=11), WHEN.replace(day=12)))
                         .order_by("placed").values_list("number", flat=True)),
        "date_part": list(orders.filter(placed__day=13).values_list("number", flat=True)),
        "slice": list(orders.order_by("-total").values_list("number", flat=True)[1:3]),
        "f_expr": list(orders.filter(total__gt=F("total") / 2).order_by("number").values_list("number", flat=True)),
        "distinct": sorted(orders.values_list("customer__display_name", flat=True).distinct()),
        "exists": (orders.filter(total__lt=0).exists(), orders.filter(total__gt=0).exists()),
        "isnull": Customer.objects.using(alias).filter(user__isnull=True).count(),
        "explain_works": orders.filter(number="N1").explain().startswith(("Index", "Seq", "Bitmap")),
    }  # fmt: skip


@django_step
def integrity_errors(alias: str) -> dict[str, object]:
    from django.db import IntegrityError, transaction

    from tests.django_app.models import Customer, Order, Tag

    _shop(alias)
    seen: dict[str, object] = {}
    grace = Customer.objects.using(alias).get(display_name="Grace")
    cases = {
        "unique_field": lambda: Tag.objects.using(alias).create(name="gift"),
        "unique_constraint": lambda: Customer.objects.using(alias).create(email="grace@example.com",
                                                                          display_name="Other"),
        "unique_together": lambda: Order.objects.using(alias).create(customer=grace, number="N0", total=1,
                                                                     placed=WHEN),
        "foreign_key": lambda: Order.objects.using(alias).create(customer_id=987654, number="orphan", total=1,
                                                                 placed=WHEN),
        "not_null": lambda: Order.objects.using(alias).create(customer=grace, number=None, total=1, placed=WHEN),
    }  # fmt: skip
    for name, make in cases.items():
        try:
            with transaction.atomic(using=alias):
                make()
            seen[name] = "no error"
        except IntegrityError as e:
            cause = e.__cause__
            seen[name] = (getattr(cause, "sqlstate", None), str(cause).splitlines()[0],
                          getattr(getattr(cause, "diag", None), "constraint_name", None))  # fmt: skip
    seen["customers"] = Customer.objects.using(alias).count()
    return seen


@django_step
def atomic_rollback_and_nested_savepoints(alias: str) -> dict[str, object]:
    from django.db import transaction

    from tests.django_app.models import Tag

    in_block = steps.rollback_and_nested_savepoints(alias)
    tags = Tag.objects.using(alias)
    on_commit: list[str] = []
    with transaction.atomic(using=alias):
        transaction.on_commit(lambda: on_commit.append("ran"), using=alias)
        tags.create(name="with-hook")
    return {"names": sorted(tags.filter(name__in=["rolled-back", "outer", "inner-lost", "inner-kept",
                                                  "inner-kept-renamed", "with-hook"]).values_list("name", flat=True)),
            "in_block": in_block, "on_commit": on_commit}  # fmt: skip


@django_step
def bulk_create_update_and_delete(alias: str) -> dict[str, object]:
    from django.db import IntegrityError, transaction
    from django.db.models import F
    from django.db.models.functions import Upper

    from tests.django_app.models import Customer, Order, Tag

    _shop(alias)
    made = Tag.objects.using(alias).bulk_create([Tag(name=f"bulk-{i:02d}") for i in range(25)])
    bulk = Tag.objects.using(alias).filter(name__startswith="bulk-")
    try:
        with transaction.atomic(using=alias):
            bulk.filter(name__lt="bulk-10").update(name="x")
        update_error = None
    except IntegrityError as e:
        update_error = getattr(e.__cause__, "sqlstate", None)
    renamed = bulk.filter(name__gte="bulk-20").update(name=Upper("name"))
    bumped = Order.objects.using(alias).filter(number__in=["N0", "N1"]).update(total=F("total") + 1)
    upserted = Tag.objects.using(alias).bulk_create([Tag(name="gift"), Tag(name="fresh")], update_conflicts=True,
                                                    unique_fields=["name"], update_fields=["name"])  # fmt: skip
    alan = Customer.objects.using(alias).get(display_name="Alan")
    deleted = alan.delete()
    return {
        "made": len(made), "ids": [t.pk for t in made][:3], "update_error": update_error,
        "renamed": renamed, "bumped": bumped, "upserted": [t.name for t in upserted],
        "names": list(Tag.objects.using(alias).filter(name__startswith="BULK").order_by("name")
                      .values_list("name", flat=True)[:2]),
        "totals": list(Order.objects.using(alias).order_by("number").values_list("number", "total")),
        "deleted": deleted, "bulk_deleted": bulk.filter(name__lt="bulk-05").delete(),
        "left": Tag.objects.using(alias).filter(name__startswith="bulk-").count(),
    }  # fmt: skip


@django_step
def json_field(alias: str) -> dict[str, object]:
    from django.db.models import F

    from tests.django_app.models import Order

    _shop(alias)
    orders = Order.objects.using(alias)
    o = orders.get(number="N1")
    o.data = {**o.data, "nested": {"deep": [1, 2.5, None, True, "ü"]}, "n": None}
    o.save(using=alias)
    return {
        "kind": sorted(orders.filter(data__kind="web").values_list("number", flat=True)),
        "key": orders.filter(data__i=2).count(),
        "has_key": (orders.filter(data__has_key="i").count(), orders.filter(data__has_key="nope").count()),
        "has_any_keys": orders.filter(data__has_any_keys=["nope", "kind"]).count(),
        "has_keys": orders.filter(data__has_keys=["i", "kind"]).count(),
        "contains": orders.filter(data__contains={"kind": "web"}).count(),
        "contained_by": orders.filter(data__contained_by={"kind": "web", "i": 1, "tags": ["a"]}).count(),
        "nested": list(orders.filter(data__nested__deep__1=2.5).values_list("number", flat=True)),
        "isnull_key": orders.filter(data__n__isnull=True).count(),
        "values": list(orders.order_by("number").values_list("data__i", "data__tags")),
        "reloaded": orders.get(number="N1").data,
        "annotated": list(orders.annotate(k=F("data__kind")).order_by("number").values_list("k", flat=True)),
    }  # fmt: skip


@django_step
def sessions_and_admin_log(alias: str) -> dict[str, object]:
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from tests.django_app.models import Tag

    user = User.objects.db_manager(alias).create_user("admin-user", password="x")
    tag = Tag.objects.using(alias).create(name="logged")
    entry = LogEntry.objects.using(alias).create(
        user=user, content_type=ContentType.objects.db_manager(alias).get_for_model(Tag),
        object_id=str(tag.pk), object_repr=str(tag.name), action_flag=ADDITION, change_message="[]")  # fmt: skip
    s = SessionStore()  # the default alias: the only server of this child
    s["cart"] = [1, 2, 3]
    s.create()
    again = SessionStore(session_key=s.session_key)
    got = LogEntry.objects.using(alias).select_related("content_type").get(pk=entry.pk)
    return {
        "log": (got.object_repr, got.is_addition(), got.content_type.model),
        "session": (again["cart"], Session.objects.using(alias).filter(session_key=s.session_key).count()),
    }


@django_step
def database_life_cycle(alias: str) -> dict[str, object]:
    """What ``manage.py test --parallel 2`` does to the database: create the test database and migrate it,
    clone it WITH TEMPLATE (no other session may be in the template), use the clone, destroy both."""
    from django.db import connections

    from tests.django_app.models import Tag

    conn = connections[alias]
    creation = conn.creation
    old_name = conn.settings_dict["NAME"]
    out: dict[str, object] = {}
    identity: dict[str, bool] = {}
    out[IDENTITY_KEY] = identity

    def has_identity(c: Any) -> bool:
        with c.cursor() as cur:
            cur.execute("SELECT pg_catalog.to_regprocedure('pg_catalog.ssl_is_used()') IS NOT NULL")
            return bool(cur.fetchone()[0])

    def leave(c: Any) -> None:  # close, and give pgtls the moment its release takes (RELEASE_PAUSE)
        c.close()
        sleep(RELEASE_PAUSE)

    # A test database left behind by an earlier run (keepdb), then a new run: "already exists", autoclobber
    # drops it (pooled idle sessions are still in it through pgtls) and creates it again.
    creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    Tag.objects.using(alias).create(name="left-behind")
    identity["first"] = has_identity(conn)
    leave(conn)
    creation.destroy_test_db(old_name, verbosity=0, keepdb=True)
    name = creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        out["name"] = name
        identity["recreated"] = has_identity(conn)
        Tag.objects.using(alias).create(name="template-row")
        out["tags"] = list(Tag.objects.using(alias).values_list("name", flat=True))
        leave(conn)
        creation.clone_test_db(suffix="1", verbosity=0, autoclobber=True)
        clone = conn.__class__(creation.get_test_db_clone_settings("1"), alias="clone_1")
        try:
            with clone.cursor() as cur:
                cur.execute("SELECT current_database(), array_agg(name ORDER BY name) FROM shop_tag")
                out["clone"] = cur.fetchone()
            identity["clone"] = has_identity(clone)
        finally:
            leave(clone)
        creation.destroy_test_db(verbosity=0, suffix="1")
    finally:
        leave(conn)
        creation.destroy_test_db(old_name, verbosity=0)
    with conn.cursor() as cur:
        cur.execute("SELECT current_database(), count(*) FROM pg_database WHERE datname LIKE 'test%%'")
        out["after"] = cur.fetchone()
    return out


def _plain(v: Any) -> Any:
    """A JSON form of what a step saw (types kept visible: Decimal('1.50') is not 1.5)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(_plain(x) for x in v)
    if isinstance(v, (Decimal, datetime, date, time, timedelta)):
        return f"{type(v).__name__}({v!s})"
    return repr(v)


def django_child(cfg: dict[str, Any]) -> dict[str, Any]:
    """In the child process: Django on one server; everything each step saw (or the error it raised)."""
    from io import StringIO

    steps.setup_django({"default": cfg["database"]})
    from django.core.management import call_command

    out: dict[str, Any] = {}
    buf = StringIO()
    try:
        call_command("migrate", database="default", interactive=False, verbosity=1, stdout=buf)
        out["migrate"] = {"ok": buf.getvalue()}
    except BaseException as e:  # noqa: BLE001 - reported, the steps still run
        out["migrate"] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    for name, step in DJANGO_STEPS.items():
        try:
            out[name] = {"ok": _plain(step("default"))}
        except BaseException as e:  # noqa: BLE001 - SystemExit too: Django's test-db creation exits on errors
            out[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    from django.db import connections

    connections.close_all()
    return out


def _start_django_child(servers: Servers, which: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["HOME"] = str(servers.home)  # libpq: no ~/.postgresql files
    return subprocess.Popen([sys.executable, "-m", "tests.relay.test_orm_relay",
                             json.dumps({"database": servers.django_db(which)})],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


@pytest.fixture(scope="module")
def django_seen(servers) -> dict[str, dict[str, Any]]:
    """which ("relay", "direct") -> step -> {"ok": what it saw} or {"error": ...}; both children at once."""
    children = {which: _start_django_child(servers, which) for which in ("relay", "direct")}
    seen: dict[str, dict[str, Any]] = {}
    for which, p in children.items():
        try:
            stdout, stderr = p.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
            pytest.fail(f"the Django child ({which}) did not finish in {CHILD_TIMEOUT}s:\n{stderr[-4000:]}")
        if p.returncode != 0:
            pytest.fail(f"the Django child ({which}) failed ({p.returncode}):\n{stderr[-6000:]}")
        seen[which] = json.loads(stdout)
    return seen


def _step(seen: dict[str, dict[str, Any]], name: str) -> tuple[Any, Any]:
    ours, theirs = seen["relay"][name], seen["direct"][name]
    assert "error" not in theirs, f"PostgreSQL 18 directly: {theirs['error']}\n{theirs['traceback']}"
    assert "error" not in ours, f"through pgtls: {ours['error']}\n{ours['traceback']}"
    return ours["ok"], theirs["ok"]


# ================================================================ Django: the tests


def test_django_migrate(django_seen):
    ours, theirs = _step(django_seen, "migrate")
    assert "Applying shop.0002_reshape... OK" in ours
    assert "Applying admin.0001_initial... OK" in ours
    assert ours == theirs


def test_django_schema_after_migrate(django_seen):
    ours, theirs = _step(django_seen, "schema")
    assert ours["who"] == [APP_ROLE, APP_ROLE, DJANGO_DB, False], "the session runs as the application's role"
    assert [c[0] for c in ours["columns"]["shop_customer"]] == [
        "id",
        "email",
        "display_name",
        "vip",
        "user_id",
    ]
    assert ours == theirs


def _without_identity(seen: Any) -> Any:
    return {k: v for k, v in seen.items() if k != IDENTITY_KEY} if isinstance(seen, dict) else seen


@pytest.mark.parametrize("step", [s for s in DJANGO_STEPS if s != "schema"])
def test_django_step_as_on_postgres(django_seen, step):
    ours, theirs = _step(django_seen, step)
    assert _without_identity(ours) == _without_identity(theirs)


def test_django_test_databases_have_the_identity_functions(django_seen):
    ours, theirs = _step(django_seen, "database_life_cycle")
    assert theirs[IDENTITY_KEY] == {"first": False, "recreated": False, "clone": False}, (
        "PostgreSQL has no sslinfo"
    )
    assert ours[IDENTITY_KEY] == {"first": True, "recreated": True, "clone": True}


def test_django_sees_what_postgres_gives(django_seen):
    """A few absolute facts, so that two equal wrong answers cannot pass."""
    seen = {name: _step(django_seen, name)[0] for name in DJANGO_STEPS}
    assert seen["users_groups_and_permissions"]["has_change"] is True
    assert seen["users_groups_and_permissions"]["has_delete"] is False
    assert seen["foreign_keys_many_to_many_and_lookups"]["by_tag"] == ["N0", "N2"]
    assert seen["querysets_filters_aggregates_and_ordering"]["agg"]["sum"] == "Decimal(117.50)"
    errors = seen["integrity_errors"]
    assert {k: v[0] for k, v in errors.items() if k != "customers"} == {
        "unique_field": "23505", "unique_constraint": "23505", "unique_together": "23505", "foreign_key": "23503",
        "not_null": "23502"}  # fmt: skip
    assert errors["unique_constraint"][2] == "shop_customer_email_uniq"
    assert seen["atomic_rollback_and_nested_savepoints"] == {
        "names": ["inner-kept-renamed", "outer", "with-hook"],
        "in_block": True,
        "on_commit": ["ran"],
    }
    assert seen["bulk_create_update_and_delete"]["update_error"] == "23505"
    assert seen["json_field"]["nested"] == ["N1"]
    assert seen["sessions_and_admin_log"]["session"] == [[1, 2, 3], 1]
    life = seen["database_life_cycle"]
    assert life["name"] == f"test_{DJANGO_DB}"
    assert life["tags"] == ["template-row"], "the test database was created anew"
    assert life["clone"] == [f"test_{DJANGO_DB}_1", ["template-row"]]
    assert life["after"] == [DJANGO_DB, 0], "both test databases dropped"


# ================================================================ CREATE DATABASE ... TEMPLATE as Django does it

# A session whose reset takes a moment: DISCARD ALL drops its 200 temporary tables (PostgreSQL drops them too,
# when the backend of a closed connection exits).
TEMP_TABLES = ("DO $$ BEGIN FOR i IN 1..200 LOOP EXECUTE format('CREATE TEMP TABLE t%s (a int)', i); "
               "END LOOP; END $$")  # fmt: skip


def _template_just_left(dsn: Callable[[str], str], tag: str) -> str:
    """Close the last session of a database, then at once (on a session opened before) copy it."""
    import psycopg

    tmpl, copy = f"race_tmpl_{tag}", f"race_copy_{tag}"
    with psycopg.connect(dsn("postgres"), autocommit=True) as ddl:
        ddl.execute(f"CREATE DATABASE {tmpl}")
        try:
            with psycopg.connect(dsn(tmpl)) as user:
                user.execute(TEMP_TABLES)
            try:
                ddl.execute(f"CREATE DATABASE {copy} TEMPLATE {tmpl}")
                return "ok"
            except psycopg.Error as e:
                return f"{e.sqlstate} {e}".splitlines()[0]
        finally:
            ddl.execute(f"DROP DATABASE IF EXISTS {copy} WITH (FORCE)")
            ddl.execute(f"DROP DATABASE {tmpl} WITH (FORCE)")


def test_create_database_from_a_template_just_left(servers):
    theirs = _template_just_left(lambda db: servers.libpq("direct", db), "direct")
    assert theirs == "ok", "PostgreSQL 18 itself"
    assert _template_just_left(lambda db: servers.libpq("relay", db), "relay") == theirs


# ================================================================ SQLAlchemy


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    joined: Mapped[datetime]
    profile: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id",
                                             cascade="all, delete-orphan")  # fmt: skip


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(sqlalchemy.Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(index=True)
    price: Mapped[Decimal] = mapped_column(sqlalchemy.Numeric(10, 2))
    tags: Mapped[list[str]] = mapped_column(ARRAY(sqlalchemy.Text), server_default="{}")
    published: Mapped[date | None]
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id", ondelete="CASCADE"))
    author: Mapped[Author] = relationship(back_populates="books")


def run_sqlalchemy_app(url: str) -> dict[str, object]:
    """The application: everything it saw, to compare between servers."""
    engine = create_engine(url, pool_size=2)
    seen: dict[str, object] = {}
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with engine.connect() as conn:
            seen["server"] = (conn.dialect.server_version_info[:1], conn.dialect.default_schema_name,
                              conn.scalar(text("SELECT current_user")))  # fmt: skip
        with Session(engine) as s:
            ada = Author(name="Ada", joined=datetime(1843, 7, 1), profile={"langs": ["en", "fr"], "n": 1})
            ada.books = [Book(title="Notes", price=Decimal("12.50"), tags=["math", "engine"],
                              published=date(1843, 10, 1)),
                         Book(title="Letters", price=Decimal("3.00"))]  # fmt: skip
            s.add(ada)
            s.commit()
            seen["ids"] = [b.id for b in ada.books]
            with s.begin_nested():  # SAVEPOINT, then RELEASE
                s.add(Author(name="Grace", joined=datetime(1906, 12, 9)))
            try:
                with s.begin_nested():  # SAVEPOINT, the flush fails, ROLLBACK TO SAVEPOINT
                    s.add(Author(name="Ada", joined=datetime(2000, 1, 1)))
                    s.flush()
            except IntegrityError as e:
                seen["duplicate"] = (
                    (e.orig.sqlstate, str(e.orig).splitlines()[0]) if e.orig is not None else None
                )
            s.commit()
        with Session(engine) as s:
            authors = s.scalars(
                select(Author).options(selectinload(Author.books)).order_by(Author.name)
            ).all()
            seen["authors"] = [(a.name, a.profile, [(b.title, str(b.price), b.tags, b.published) for b in a.books])
                               for a in authors]  # fmt: skip
            seen["total"] = str(s.scalar(select(func.sum(Book.price))))
            seen["jsonb"] = s.scalars(
                select(Author.name).where(Author.profile["langs"].contains(["fr"]))
            ).all()
            seen["any_tag"] = s.scalars(select(Book.title).where(sqlalchemy.any_(Book.tags) == "math")).all()
            lazy = s.scalars(select(Book).where(Book.title == "Letters")).one()
            seen["lazy_author"] = lazy.author.name
            lazy.price = Decimal("4.25")
            s.commit()
        with engine.begin() as conn:
            conn.execute(
                Book.__table__.insert(), [{"title": f"t{i}", "price": i, "author_id": 1} for i in range(20)]
            )
            seen["count"] = conn.scalar(text("SELECT count(*) FROM book"))
            seen["returning"] = sorted(conn.execute(Book.__table__.update().where(Book.title.like("t1%"))
                                                    .values(price=Book.price * 2)
                                                    .returning(Book.title, Book.price)).all())  # fmt: skip
            seen["params"] = conn.execute(
                text("SELECT CAST(:a AS int) + 1, CAST(:b AS text)"), {"a": 41, "b": "x"}
            ).all()
            seen["grouped"] = conn.execute(
                select(Author.name, func.count(Book.id), func.max(Book.price))
                .join(Book)
                .group_by(Author.name)
                .order_by(Author.name)
            ).all()
        with engine.connect() as conn:
            trans = conn.begin()
            conn.execute(text("DELETE FROM book"))
            trans.rollback()
            seen["after_rollback"] = conn.scalar(text("SELECT count(*) FROM book"))
        with Session(engine) as s:  # ON DELETE CASCADE in the database, delete-orphan in the ORM
            s.delete(s.scalars(select(Author).where(Author.name == "Ada")).one())
            s.commit()
            seen["after_delete"] = s.scalar(select(func.count()).select_from(Book))
    finally:
        engine.dispose()
    return seen


def test_sqlalchemy_app_as_on_postgres(servers):
    ours = run_sqlalchemy_app(servers.sa_url("relay"))
    theirs = run_sqlalchemy_app(servers.sa_url("direct"))
    assert ours["server"] == ((18,), "public", APP_ROLE)
    assert ours["duplicate"][0] == "23505"
    assert ours["authors"][1] == ("Grace", {}, [])
    assert ours["after_delete"] == 0
    assert ours == theirs


REFLECTIONS = (
    "get_columns",
    "get_pk_constraint",
    "get_foreign_keys",
    "get_indexes",
    "get_unique_constraints",
    "get_check_constraints",
    "get_table_comment",
)


def _reflect(url: str) -> dict[str, object]:
    """Build the constraint catalog's schema (real foreign keys, DEFERRABLE and ON DELETE included) and the
    application's tables; then everything inspect() says of them."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for t in reversed(TABLES):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {t} CASCADE")
            for sql in [*SCHEMA, *PG_FKS, f"COMMENT ON TABLE r_marked IS {quote_literal(USER_COMMENT)}",
                        "COMMENT ON COLUMN r_item.qty IS 'how many'",
                        "CREATE OR REPLACE VIEW r_view AS SELECT id, name FROM r_item WHERE qty > 1"]:  # fmt: skip
                conn.exec_driver_sql(sql)
        Base.metadata.create_all(engine)
        insp = inspect(engine)

        def norm(x: Any) -> Any:  # type objects compare by identity: their repr is what they say
            if isinstance(x, dict):
                return {k: norm(v) for k, v in x.items()}
            if isinstance(x, list):
                return [norm(v) for v in x]
            return repr(x) if isinstance(x, sqlalchemy.types.TypeEngine) else x

        out: dict[str, object] = {
            "tables": insp.get_table_names(), "views": insp.get_view_names(),
            "view_def": " ".join((insp.get_view_definition("r_view") or "").split()),
            "sequences": insp.get_sequence_names(), "schemas": insp.get_schema_names(),
            "multi_columns": norm({k[1]: v for k, v in sorted(insp.get_multi_columns().items())}),
        }  # fmt: skip
        for t in (*TABLES, "author", "book"):
            for m in REFLECTIONS:
                out[f"{t}.{m}"] = norm(getattr(insp, m)(t))
        meta = sqlalchemy.MetaData()
        meta.reflect(engine, only=["author", "book"])
        out["reflected_ddl"] = {t.name: str(sqlalchemy.schema.CreateTable(t).compile(engine)).strip()
                                for t in meta.sorted_tables}  # fmt: skip
        return out
    finally:
        engine.dispose()


def test_sqlalchemy_reflection_as_on_postgres(servers):
    ours = _reflect(servers.sa_url("relay"))
    theirs = _reflect(servers.sa_url("direct"))
    assert ours["r_parent.get_pk_constraint"]["constrained_columns"] == ["a", "b"]
    assert [fk["options"] for fk in ours["r_marked.get_foreign_keys"]] == [
        {"ondelete": "CASCADE", "deferrable": True, "initially": "DEFERRED"},
        {"ondelete": "SET NULL"},
    ]
    assert {i["name"] for i in ours["r_item.get_indexes"]} >= {"r_item_qty_idx", "r_item_lower_idx"}
    assert ours["book.get_foreign_keys"][0]["referred_table"] == "author"
    # pgtls keeps its client-identity functions in a schema of its own in every database it serves
    # (pgtls/backends/relay/identity.py): the one thing the relay adds to what PostgreSQL shows.
    assert "pgtls" in ours["schemas"]
    ours["schemas"] = [s for s in ours["schemas"] if s != "pgtls"]  # type: ignore[union-attr]
    assert ours == theirs


if __name__ == "__main__":  # the Django child process (see django_seen)
    sys.stdout.write(json.dumps(django_child(json.loads(sys.argv[1]))))
