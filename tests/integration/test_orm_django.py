"""An unmodified Django 5 (its PostgreSQL backend over psycopg 3, sslmode=verify-full) on the embedded
backend, compared step by step with the same steps on PostgreSQL 15.

Django is configured once, in process, with two database aliases: ``pgtls`` (a real pgtls server over TLS
with this test's CA) and ``postgres`` (a real PostgreSQL 15).  ``migrate`` runs the migrations of
contenttypes, auth, sessions, admin and ``tests.django_app`` (whose second migration drops an indexed
column in the middle of a table, renames an indexed column, widens a varchar, adds a unique constraint, a
column with a default and an index: DuckDB can do none of these in place, see ddl.py) on both; every test
then runs the same ORM steps against each alias and compares what the application observes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests import prereq

django = prereq.importorskip("django")

from tests.django_app import steps  # noqa: E402
from tests.django_app.steps import WHEN  # noqa: E402
from tests.pgtlsserver import tls_server  # noqa: E402

ALIASES = ("pgtls", "postgres")


@pytest.fixture(scope="module")
def dbs(certs, client_home, realpg) -> Iterator[dict[str, str]]:
    """Django configured with both servers and migrated on both; yields alias -> migrate's output."""
    import os

    from django.conf import settings

    home = os.environ.get("HOME")
    os.environ["HOME"] = str(client_home)  # libpq: no ~/.postgresql files
    server = tls_server(certs, backend="duckdb")
    try:
        common = {"ENGINE": "django.db.backends.postgresql", "NAME": "postgres", "USER": "postgres",
                  "HOST": "127.0.0.1", "CONN_MAX_AGE": 0}  # fmt: skip
        databases = {
            "default": {**common, "PORT": server.port,
                        "OPTIONS": {"sslmode": "verify-full", "sslrootcert": certs.path("root_ca.crt")}},
            "postgres": {**common, "PORT": realpg.port},
        }  # fmt: skip
        databases["pgtls"] = databases["default"]
        # Django is configured once per process: no other test may do it in-process (the others use a child)
        assert not settings.configured, "Django was already configured by another test in this process"
        steps.setup_django(databases)
        from io import StringIO

        from django.core.management import call_command

        out: dict[str, str] = {}
        for alias in ALIASES:
            buf = StringIO()
            call_command("migrate", database=alias, interactive=False, verbosity=1, stdout=buf)
            out[alias] = buf.getvalue()
        yield out
        from django.db import connections

        connections.close_all()
    finally:
        print(f"--- pgtls server log ---\n{server.full_log()[-6000:]}")  # shown only on failure
        server.cleanup()
        if home is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = home


def both(step: Callable[[str], Any]) -> tuple[Any, Any]:
    return step("pgtls"), step("postgres")


def test_migrate_gives_the_same_migrations_and_schema(dbs):
    from django.db import connections

    assert "Applying shop.0002_reshape... OK" in dbs["pgtls"]
    assert dbs["pgtls"] == dbs["postgres"]

    def schema(alias: str) -> dict[str, object]:
        conn = connections[alias]
        with conn.cursor() as cur:
            cur.execute("SELECT app, name FROM django_migrations ORDER BY id")
            migrations = cur.fetchall()
            tables = sorted(conn.introspection.table_names(cur))
            columns = {}
            for t in ("django_content_type", "auth_user", "shop_customer", "shop_order", "shop_order_tags"):
                cur.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                            "ORDER BY ordinal_position", [t])  # fmt: skip
                columns[t] = [r[0] for r in cur.fetchall()]
        return {"migrations": migrations, "tables": tables, "columns": columns}

    ours, theirs = both(schema)
    assert ours["columns"]["django_content_type"] == ["id", "app_label", "model"]  # 0002 dropped "name"
    assert ours["columns"]["shop_customer"] == ["id", "email", "display_name", "vip", "user_id"]
    assert ours == theirs


def test_users_groups_and_permissions(dbs):
    ours, theirs = both(steps.users_groups_and_permissions)
    assert ours["has_change"] and not ours["has_delete"]
    assert ours == theirs


def _shop(alias: str) -> None:
    """The shop of the tests below (created once per alias), its orders' JSON data without tags."""
    steps.shop(alias)


def test_foreign_keys_many_to_many_and_lookups(dbs):
    def step(alias: str) -> dict[str, object]:
        _shop(alias)
        return steps.foreign_keys_many_to_many_and_lookups(alias)

    ours, theirs = both(step)
    assert ours["by_tag"] == ["N0", "N2"]
    assert ours == theirs


def test_annotate_groups_by_primary_key(dbs):
    """annotate() groups by the primary key only and selects other columns (groupby.py)."""

    def step(alias: str) -> dict[str, object]:
        _shop(alias)
        return steps.annotations_grouped_by_primary_key(alias)

    ours, theirs = both(step)
    assert ours == theirs


def test_unique_violations_are_integrity_errors(dbs):
    from django.db import IntegrityError, transaction

    from tests.django_app.models import Customer, Order, Tag

    def step(alias: str) -> dict[str, object]:
        _shop(alias)
        seen: dict[str, object] = {}
        grace = Customer.objects.using(alias).get(display_name="Grace")
        cases = {
            "unique_field": lambda: Tag.objects.using(alias).create(name="gift"),
            # a UniqueConstraint added by the second migration (ALTER TABLE ... ADD CONSTRAINT ... UNIQUE)
            "unique_constraint": lambda: Customer.objects.using(alias).create(email="grace@example.com",
                                                                              display_name="Other"),
            # unique_together, on a table the second migration rebuilt
            "unique_together": lambda: Order.objects.using(alias).create(customer=grace, number="N0",
                                                                         total=1, placed=WHEN),
        }  # fmt: skip
        for name, make in cases.items():
            try:
                with transaction.atomic(using=alias):
                    make()
                seen[name] = "no error"
            except IntegrityError as e:
                seen[name] = getattr(e.__cause__, "sqlstate", None)
        seen["customers"] = Customer.objects.using(alias).count()
        return seen

    ours, theirs = both(step)
    assert ours["unique_constraint"] == "23505"
    assert ours == theirs


def test_atomic_rollback_and_nested_savepoints(dbs):
    from tests.django_app.models import Tag

    def step(alias: str) -> dict[str, object]:
        steps.rollback_and_nested_savepoints(alias)
        tags = Tag.objects.using(alias)
        return {
            "names": sorted(
                tags.filter(
                    name__in=["rolled-back", "outer", "inner-lost", "inner-kept", "inner-kept-renamed"]
                ).values_list("name", flat=True)
            )
        }

    ours, theirs = both(step)
    assert ours == {"names": ["inner-kept-renamed", "outer"]}
    assert ours == theirs


def test_querysets_filters_aggregates_and_ordering(dbs):
    from django.db.models import Avg, Count, F, Max, Min, Q, Sum

    from tests.django_app.models import Customer, Order

    def step(alias: str) -> dict[str, object]:
        _shop(alias)
        orders = Order.objects.using(alias)
        return {
            "agg": orders.aggregate(sum=Sum("total"), top=Max("total"), low=Min("total"), n=Count("id")),
            "avg": str(round(orders.aggregate(a=Avg("total"))["a"], 4)),
            "q": sorted(orders.filter(Q(total__gte=10) | Q(number="N2")).exclude(number="N1")
                        .values_list("number", flat=True)),
            "icontains": list(Customer.objects.using(alias).filter(display_name__icontains="RAC")
                              .values_list("email", flat=True)),
            "startswith": orders.filter(number__startswith="N").count(),
            "in_range": list(orders.filter(placed__range=(WHEN.replace(day=11), WHEN.replace(day=12)))
                             .order_by("placed").values_list("number", flat=True)),
            "date_part": list(orders.filter(placed__day=13).values_list("number", flat=True)),
            "slice": list(orders.order_by("-total").values_list("number", flat=True)[1:3]),
            "f_expr": list(orders.filter(total__gt=F("total") / 2).order_by("number").values_list("number", flat=True)),
            "distinct": sorted(orders.values_list("customer__display_name", flat=True).distinct()),
            "exists": (orders.filter(total__lt=0).exists(), orders.filter(total__gt=0).exists()),
            "isnull": Customer.objects.using(alias).filter(user__isnull=True).count(),
        }  # fmt: skip

    ours, theirs = both(step)
    assert ours["agg"]["sum"] == Decimal("117.50")
    assert ours == theirs


def test_bulk_create_update_and_delete(dbs):
    from django.db import IntegrityError, transaction
    from django.db.models import F
    from django.db.models.functions import Upper

    from tests.django_app.models import Customer, Order, Tag

    def step(alias: str) -> dict[str, object]:
        _shop(alias)
        made = Tag.objects.using(alias).bulk_create([Tag(name=f"bulk-{i:02d}") for i in range(25)])
        bulk = Tag.objects.using(alias).filter(name__startswith="bulk-")
        try:  # the second row renamed to "x" violates the unique name: the whole UPDATE is undone
            with transaction.atomic(using=alias):
                bulk.filter(name__lt="bulk-10").update(name="x")
            update_error = None
        except IntegrityError as e:
            update_error = getattr(e.__cause__, "sqlstate", None)
        renamed = bulk.filter(name__gte="bulk-20").update(name=Upper("name"))
        bumped = Order.objects.using(alias).filter(number__in=["N0", "N1"]).update(total=F("total") + 1)
        alan = Customer.objects.using(alias).get(display_name="Alan")
        deleted = alan.delete()  # Django deletes the order's tag links and the order first, then Alan
        return {
            "made": len(made), "ids_set": all(t.pk is not None for t in made), "update_error": update_error,
            "renamed": renamed, "bumped": bumped,
            "names": list(Tag.objects.using(alias).filter(name__startswith="BULK").order_by("name")
                          .values_list("name", flat=True)[:2]),
            "totals": list(Order.objects.using(alias).order_by("number").values_list("number", "total")),
            "deleted": deleted, "bulk_deleted": bulk.filter(name__lt="bulk-05").delete(),
            "left": Tag.objects.using(alias).filter(name__startswith="bulk-").count(),
        }  # fmt: skip

    ours, theirs = both(step)
    assert ours["made"] == 25 and ours["update_error"] == "23505" and ours["deleted"][0] > 1
    assert ours == theirs


def test_sessions_and_admin_log(dbs):
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.auth.models import User
    from django.contrib.contenttypes.models import ContentType
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from tests.django_app.models import Tag

    def step(alias: str) -> dict[str, object]:
        user = User.objects.db_manager(alias).create_user(f"admin-{alias}", password="x")
        tag = Tag.objects.using(alias).create(name="logged")
        entry = LogEntry.objects.using(alias).create(
            user=user, content_type=ContentType.objects.db_manager(alias).get_for_model(Tag),
            object_id=str(tag.pk), object_repr=str(tag.name), action_flag=ADDITION, change_message="[]")  # fmt: skip
        # SessionStore uses the default alias: run it only there, and compare what it reads back
        session_seen = None
        if alias == "pgtls":
            s = SessionStore()
            s["cart"] = [1, 2, 3]
            s.create()
            again = SessionStore(session_key=s.session_key)
            session_seen = (
                again["cart"],
                Session.objects.using(alias).filter(session_key=s.session_key).count(),
            )
        got = LogEntry.objects.using(alias).select_related("content_type").get(pk=entry.pk)
        return {"log": (got.object_repr, got.is_addition(), got.content_type.model), "session": session_seen}

    ours, theirs = both(step)
    assert ours["session"] == ([1, 2, 3], 1)
    theirs["session"] = ours["session"]  # (the session store only talks to the default alias, pgtls)
    assert ours == theirs


def test_json_field_lookups(dbs):
    from tests.django_app.models import Order

    def step(alias: str) -> dict[str, object]:
        _shop(alias)
        orders = Order.objects.using(alias)
        return {
            "kind": sorted(orders.filter(data__kind="web").values_list("number", flat=True)),
            "contains_key": orders.filter(data__i=2).count(),
        }

    ours, theirs = both(step)
    assert ours == theirs


def test_json_field_has_key(dbs):
    """has_key, has_any_keys and has_keys are jsonb's ? ?| ?& (jsonb.exists_edits); contains and
    contained_by are @> and <@ (jsonb.containment_edits)."""
    from tests.django_app.models import Order

    def step(alias: str) -> tuple[int, ...]:
        _shop(alias)
        orders = Order.objects.using(alias)
        return (orders.filter(data__has_key="i").count(), orders.filter(data__has_key="nope").count(),
                orders.filter(data__has_any_keys=["nope", "kind"]).count(),
                orders.filter(data__has_keys=["i", "kind"]).count(),
                orders.filter(data__contains={"kind": "web"}).count(),  # jsonb @>
                orders.filter(data__contained_by={"kind": "web", "i": 1}).count())  # fmt: skip

    ours, theirs = both(step)
    assert ours == theirs


def test_foreign_key_violation_fails_at_commit(dbs):
    from django.db import IntegrityError, transaction

    from tests.django_app.models import Order

    def step(alias: str) -> str | None:
        try:
            with transaction.atomic(using=alias):
                Order.objects.using(alias).create(customer_id=987654, number="orphan", total=1, placed=WHEN)
        except IntegrityError as e:
            return getattr(e.__cause__, "sqlstate", None)
        return None

    ours, theirs = both(step)
    assert theirs == "23503"
    assert ours == theirs
