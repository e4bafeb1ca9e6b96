"""Schema changes as a real app makes them: drop an indexed column in the middle of a table, rename a
column, add a column with a default, widen a varchar, add a unique constraint and an index."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.RemoveField(model_name="customer", name="legacy_code"),
        migrations.RenameField(model_name="customer", old_name="name", new_name="display_name"),
        migrations.AlterField(model_name="customer", name="email", field=models.EmailField(max_length=120)),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.UniqueConstraint(fields=["email"], name="shop_customer_email_uniq"),
        ),
        migrations.RemoveField(model_name="order", name="status"),
        migrations.AddField(model_name="order", name="note", field=models.TextField(blank=True, default="")),
        migrations.AddIndex(
            model_name="order", index=models.Index(fields=["placed"], name="shop_order_placed_idx")
        ),
    ]
