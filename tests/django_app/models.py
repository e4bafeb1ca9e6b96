"""Models whose schema the migrations build in two steps, the second one altering it as apps do."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Tag(models.Model):
    name = models.CharField(max_length=40, unique=True)

    class Meta:
        ordering = ["name"]


class Customer(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True)
    email = models.EmailField(max_length=120)
    display_name = models.CharField(max_length=80, db_index=True)
    vip = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["email"], name="shop_customer_email_uniq")]


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    number = models.CharField(max_length=20)
    total = models.DecimalField(max_digits=10, decimal_places=2)
    placed = models.DateTimeField()
    note = models.TextField(blank=True, default="")
    tags = models.ManyToManyField(Tag, related_name="orders", blank=True)
    data = models.JSONField(default=dict)

    class Meta:
        unique_together = [("customer", "number")]
        indexes = [models.Index(fields=["placed"], name="shop_order_placed_idx")]
