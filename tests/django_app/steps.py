"""The ORM steps both Django tests run on this app, each against two servers: the embedded backend and
PostgreSQL in process (tests/integration/test_orm_django.py), the relay and PostgreSQL directly in a child
process per server (tests/relay/test_orm_relay.py).  A step takes a database alias and returns what the
application saw, to compare between the servers; each test adds what its backend is tested for beyond these.

The models are imported inside the functions: this module is imported before Django is set up.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

WHEN = datetime(2024, 5, 17, 12, 30, tzinfo=UTC)


def setup_django(databases: dict[str, dict[str, Any]]) -> None:
    """Configure Django with this app and ``databases`` (once a process), and set it up."""
    import django
    from django.conf import settings

    settings.configure(
        DATABASES=databases,
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions",
                        "django.contrib.admin", "django.contrib.messages", "tests.django_app"],
        USE_TZ=True, TIME_ZONE="UTC", SECRET_KEY="not-secret", DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast: this is not about hashing
    )  # fmt: skip
    django.setup()


def shop(alias: str, *, tags_in_data: bool = False) -> None:
    """Customers, tags and orders used by the steps (created once per alias); ``tags_in_data``: each order's
    JSON data holds a list of tags too."""
    from tests.django_app.models import Customer, Order, Tag

    if Customer.objects.using(alias).filter(email="grace@example.com").exists():
        return
    tags = {n: Tag.objects.using(alias).create(name=n) for n in ("gift", "express", "bulk")}
    grace = Customer.objects.using(alias).create(email="grace@example.com", display_name="Grace", vip=True)
    alan = Customer.objects.using(alias).create(email="alan@example.com", display_name="Alan")
    for i, (who, total) in enumerate([(grace, "12.50"), (grace, "99.99"), (alan, "5.00"), (grace, "0.01")]):
        data: dict[str, object] = {"i": i, "kind": "web"}
        if tags_in_data:
            data["tags"] = ["a", "b"][: i % 3]
        o = Order.objects.using(alias).create(customer=who, number=f"N{i}", total=Decimal(total),
                                              placed=WHEN.replace(day=10 + i), data=data)  # fmt: skip
        o.tags.set([tags["gift"]] if i % 2 else [tags["gift"], tags["express"]])


def users_groups_and_permissions(alias: str) -> dict[str, object]:
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType

    ct = ContentType.objects.db_manager(alias).get_by_natural_key("shop", "order")
    perms = Permission.objects.using(alias).filter(content_type=ct).order_by("codename")
    editors = Group.objects.using(alias).create(name="editors")
    editors.permissions.add(*perms.filter(codename__in=["change_order", "view_order"]))
    ada = User.objects.db_manager(alias).create_user("ada", "ada@example.com", "pw1", first_name="Ada")
    ada.groups.add(editors)
    ada.user_permissions.add(perms.get(codename="add_order"))
    root = User.objects.db_manager(alias).create_superuser("root", "root@example.com", "pw2")
    ada = User.objects.db_manager(alias).get(username="ada")  # fresh: no permission cache
    return {
        "codenames": [p.codename for p in perms],
        "content_types": sorted(ContentType.objects.using(alias).values_list("app_label", "model")),
        "ada_perms": sorted(ada.get_all_permissions()), "ada_group_perms": sorted(ada.get_group_permissions()),
        "has_change": ada.has_perm("shop.change_order"), "has_delete": ada.has_perm("shop.delete_order"),
        "password_ok": ada.check_password("pw1"), "password_bad": ada.check_password("nope"),
        "root": (root.is_superuser, root.is_staff, root.has_perm("shop.delete_order")),
        "groups": list(User.objects.using(alias).filter(groups__name="editors").values_list("username", flat=True)),
    }  # fmt: skip


def foreign_keys_many_to_many_and_lookups(alias: str) -> dict[str, object]:
    """Of the :func:`shop` (made first)."""
    from tests.django_app.models import Customer, Order

    orders = Order.objects.using(alias)
    grace = Customer.objects.using(alias).get(display_name="Grace")
    first = orders.select_related("customer").order_by("placed").first()
    assert first is not None
    return {
        "grace_orders": list(grace.orders.order_by("number").values_list("number", "total")),
        "first": (first.number, first.customer.display_name, first.placed, first.data, first.note),
        "prefetched": [(o.number, [t.name for t in o.tags.all()])
                       for o in orders.prefetch_related("tags").order_by("-number")],
        "by_tag": sorted(orders.filter(tags__name="express").values_list("number", flat=True)),
        "vip_orders": orders.filter(customer__vip=True).count(),
        "through": sorted((r.order.number, r.tag.name) for r in Order.tags.through.objects.using(alias)
                          .select_related("order", "tag")),
    }  # fmt: skip


def annotations_grouped_by_primary_key(alias: str) -> dict[str, object]:
    """annotate() groups by the primary key only and selects other columns; of the :func:`shop` (made first)."""
    from django.db.models import Count, Sum

    from tests.django_app.models import Customer, Tag

    return {
        "tag_counts": list(Tag.objects.using(alias).annotate(n=Count("orders")).order_by("-n", "name")
                           .values_list("name", "n")),
        "per_customer": list(Customer.objects.using(alias).annotate(n=Count("orders"), s=Sum("orders__total"))
                             .order_by("display_name").values_list("display_name", "n", "s")),
    }  # fmt: skip


def rollback_and_nested_savepoints(alias: str) -> bool:
    """An atomic block undone by an exception; then one with a savepoint rolled back to (a duplicate tag) and
    one released.  Whether the connection said it was in an atomic block at the end of the outer one."""
    from django.db import IntegrityError, connections, transaction

    from tests.django_app.models import Tag

    class Boom(Exception):
        pass

    tags = Tag.objects.using(alias)
    try:
        with transaction.atomic(using=alias):
            tags.create(name="rolled-back")
            raise Boom
    except Boom:
        pass
    with transaction.atomic(using=alias):
        tags.create(name="outer")
        try:
            with transaction.atomic(using=alias):  # a SAVEPOINT; the duplicate rolls back to it
                tags.create(name="inner-lost")
                tags.create(name="outer")
        except IntegrityError:
            pass
        with transaction.atomic(using=alias):  # SAVEPOINT ... RELEASE
            tags.create(name="inner-kept")
        tags.filter(name="inner-kept").update(name="inner-kept-renamed")
        in_block = connections[alias].in_atomic_block
    return in_block
