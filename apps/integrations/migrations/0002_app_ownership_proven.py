"""Ownership of an Intercom app is proven, not claimed: one *active* connection per app id, and the fields
that record verification (verified_at), takeover (took_over_at) and disabling (disabled_*).

Forward on a live database: the new columns are nullable or blank (no rewrite), the partial unique index
is created before the old unique constraint is dropped, all in the migration's one transaction, so no
moment allows two connections of one app. Connections stored before are left `verified_at = NULL`; the
`verify_intercom_connections` job (or command) asks Intercom about each once.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="intercomconnection",
            name="disabled_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="intercomconnection",
            name="disabled_code",
            field=models.CharField(
                blank=True,
                choices=[
                    ("token_refused", "Intercom refuses the access token"),
                    ("app_mismatch", "The access token belongs to another Intercom workspace"),
                    ("app_claimed", "Another Cue workspace proved it owns the Intercom workspace"),
                ],
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="intercomconnection",
            name="disabled_reason",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="intercomconnection",
            name="took_over_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="intercomconnection",
            name="verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="intercomconnection",
            constraint=models.UniqueConstraint(
                condition=models.Q(("disabled_at__isnull", True)),
                fields=("app_id",),
                name="integrations_conn_active_app_uniq",
            ),
        ),
        migrations.AlterField(
            model_name="intercomconnection",
            name="app_id",
            field=models.CharField(max_length=64),
        ),
    ]
