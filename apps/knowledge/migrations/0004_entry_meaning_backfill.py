"""Gives entries written before meanings existed their meaning and accepted-evidence meaning.

Runs forward on a live database: batches of BATCH entries, each committed on its own (non-atomic
migration), rows already filled are skipped, so an interrupted run resumes where it stopped. Until
an entry is filled it simply ranks on its words alone, as before.
"""

from django.db import migrations, transaction

BATCH = 500


def backfill(apps, schema_editor):
    from apps.knowledge.semantic import add, entry_meaning, meaning_of
    from apps.knowledge.text import lexemes_of

    Entry = apps.get_model("knowledge", "Entry")
    EntryEvidence = apps.get_model("knowledge", "EntryEvidence")
    last_id = 0
    while True:
        with transaction.atomic():
            batch = list(
                Entry.objects.select_for_update().filter(pk__gt=last_id, meaning__isnull=True).order_by("pk")[:BATCH]
            )
            if not batch:
                return
            for entry in batch:
                entry.meaning = entry_meaning(entry.title, entry.body_text)
                accepted = None
                for text in EntryEvidence.objects.filter(entry_id=entry.pk, action="accept").values_list(
                    "text", flat=True
                ):
                    accepted = add(accepted, meaning_of(lexemes_of(text)))
                entry.accepted_meaning = accepted
            Entry.objects.bulk_update(batch, ["meaning", "accepted_meaning"])
            last_id = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("knowledge", "0003_entry_meaning")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
