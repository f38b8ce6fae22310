# Knowledge from Intercom: synced entries remember their source (article id, locale, URL, edit time), sync runs,
# and entries proposed from recurring replies. Only adds columns (nullable or with defaults) and tables; the
# unique source key gains the locale (dropped and re-created in this one transaction).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_workspace_retention_days"),
        ("knowledge", "0004_entry_meaning_backfill"),
    ]

    operations = [
        migrations.CreateModel(
            name="EntryProposal",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text_key", models.CharField(max_length=64)),
                ("title", models.CharField(max_length=300)),
                ("body_html", models.TextField()),
                ("body_text", models.TextField()),
                (
                    "times_sent",
                    models.PositiveIntegerField(default=0, help_text="Conversations the reply was sent in."),
                ),
                ("example_questions", models.JSONField(blank=True, default=list)),
                (
                    "status",
                    models.CharField(
                        choices=[("proposed", "Proposed"), ("accepted", "Accepted"), ("dismissed", "Dismissed")],
                        default="proposed",
                        max_length=10,
                    ),
                ),
                ("decided_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
        ),
        migrations.CreateModel(
            name="ReplyOccurrence",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text_key", models.CharField(max_length=64)),
                ("conversation_ref", models.CharField(max_length=100)),
                (
                    "question",
                    models.TextField(
                        blank=True, help_text="What the customer had asked (an example for the proposal)."
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
        ),
        migrations.CreateModel(
            name="SyncRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("articles", "Help Center sync"), ("history", "History import")], max_length=10
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("running", "Running"),
                            ("waiting", "Waiting for Intercom's rate limit"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        default="running",
                        max_length=10,
                    ),
                ),
                ("params", models.JSONField(blank=True, default=dict)),
                ("cursor", models.CharField(blank=True, default="", max_length=500)),
                ("offset", models.PositiveIntegerField(default=0)),
                ("pages", models.PositiveIntegerField(default=0)),
                ("done", models.PositiveIntegerField(default=0)),
                ("total", models.PositiveIntegerField(blank=True, null=True)),
                ("errors", models.PositiveIntegerField(default=0)),
                ("error_log", models.JSONField(blank=True, default=list)),
                ("last_error", models.TextField(blank=True)),
                (
                    "counts",
                    models.JSONField(
                        blank=True, default=dict, help_text="What the run did: created, updated, retired..."
                    ),
                ),
                ("requests", models.PositiveIntegerField(default=0)),
                ("rate_limited", models.PositiveIntegerField(default=0, help_text="429 answers seen.")),
                (
                    "paced_seconds",
                    models.FloatField(default=0.0, help_text="Time waited for Intercom's rate limit to reset."),
                ),
                ("rate_limit", models.IntegerField(blank=True, null=True)),
                ("rate_remaining", models.IntegerField(blank=True, null=True)),
                (
                    "rate_reset",
                    models.FloatField(blank=True, help_text="Epoch seconds when the window resets.", null=True),
                ),
                ("tasks", models.PositiveIntegerField(default=0, help_text="Page tasks run.")),
                ("resume_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
            ],
        ),
        migrations.RemoveConstraint(
            model_name="entry",
            name="knowledge_entry_external_id_unique",
        ),
        migrations.AddField(
            model_name="entry",
            name="retired_at",
            field=models.DateTimeField(blank=True, help_text="When its source removed or unpublished it.", null=True),
        ),
        migrations.AddField(
            model_name="entry",
            name="source_locale",
            field=models.CharField(blank=True, default="", max_length=20),
        ),
        migrations.AddField(
            model_name="entry",
            name="source_run_id",
            field=models.BigIntegerField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="entry",
            name="source_updated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="entry",
            name="source_url",
            field=models.URLField(blank=True, default="", max_length=1000),
        ),
        migrations.AddField(
            model_name="knowledgesettings",
            name="article_locales",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddConstraint(
            model_name="entry",
            constraint=models.UniqueConstraint(
                condition=models.Q(("external_id", ""), _negated=True),
                fields=("workspace", "source", "external_id", "source_locale"),
                name="knowledge_entry_source_unique",
            ),
        ),
        migrations.AddField(
            model_name="entryproposal",
            name="decided_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="accounts.membership",
            ),
        ),
        migrations.AddField(
            model_name="entryproposal",
            name="entry",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="knowledge.entry",
            ),
        ),
        migrations.AddField(
            model_name="entryproposal",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
        migrations.AddField(
            model_name="replyoccurrence",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="started_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="accounts.membership",
            ),
        ),
        migrations.AddField(
            model_name="syncrun",
            name="workspace",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.workspace"
            ),
        ),
        migrations.AddIndex(
            model_name="entryproposal",
            index=models.Index(fields=["workspace", "status", "-times_sent"], name="knowledge_proposal_ws_idx"),
        ),
        migrations.AddConstraint(
            model_name="entryproposal",
            constraint=models.UniqueConstraint(
                fields=("workspace", "text_key"), name="knowledge_proposal_one_per_text"
            ),
        ),
        migrations.AddConstraint(
            model_name="replyoccurrence",
            constraint=models.UniqueConstraint(
                fields=("workspace", "text_key", "conversation_ref"), name="knowledge_reply_once_per_conversation"
            ),
        ),
        migrations.AddIndex(
            model_name="syncrun",
            index=models.Index(fields=["workspace", "-created_at"], name="knowledge_syncrun_ws_idx"),
        ),
        migrations.AddIndex(
            model_name="syncrun",
            index=models.Index(
                condition=models.Q(("status", "waiting")), fields=["resume_at"], name="knowledge_syncrun_wait_idx"
            ),
        ),
        migrations.AddConstraint(
            model_name="syncrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["running", "waiting"])),
                fields=("workspace", "kind"),
                name="knowledge_syncrun_one_active",
            ),
        ),
    ]
