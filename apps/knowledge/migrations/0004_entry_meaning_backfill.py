"""Gives entries written before meanings existed their meaning and accepted-evidence meaning.

Runs forward on a live database: batches of BATCH entries, each committed on its own (non-atomic
migration), rows already filled are skipped, so an interrupted run resumes where it stopped. Until
an entry is filled it simply ranks on its words alone, as before.
"""

from django.db import migrations, transaction

BATCH = 500


def backfill(apps, schema_editor):
    from apps.knowledge.semantic import entry_meaning, meaning_of, to_bytes, total
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
            accepted = {}  # the batch's accepted evidence, read in one query
            evidence = EntryEvidence.objects.filter(entry_id__in=[e.pk for e in batch], action="accept")
            for entry_id, text in evidence.order_by("pk").values_list("entry_id", "text"):
                accepted[entry_id] = total(accepted.get(entry_id), meaning_of(lexemes_of(text)))
            for entry in batch:
                entry.meaning = entry_meaning(entry.title, entry.body_text)
                entry.accepted_meaning = to_bytes(accepted.get(entry.pk))
            Entry.objects.bulk_update(batch, ["meaning", "accepted_meaning"])
            last_id = batch[-1].pk


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("knowledge", "0003_entry_meaning")]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop, elidable=True)]
