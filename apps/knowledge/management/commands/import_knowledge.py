"""Import a large CSV or JSON file into a workspace's knowledge base, with a progress bar."""

import os

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.accounts.models import Workspace
from apps.knowledge.importing import ImportFileError, format_guess, rows_from_file
from apps.knowledge.services import entries_import


class Command(BaseCommand):
    help = (
        "Import knowledge-base entries (columns/keys: title, body, and optionally kind, tags, enabled, "
        "external_id, source) into a workspace. Invalid rows are reported and skipped; a fatal error "
        "imports nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("workspace_id", type=int)
        parser.add_argument("file")
        parser.add_argument("--format", choices=["csv", "json"], help="default: from the file name")
        parser.add_argument("--source", help="the entries' source (default: the format); re-imports update by it")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")

    def handle(self, *args, workspace_id, file, format=None, source=None, no_progress=False, **options):
        if not Workspace.objects.filter(pk=workspace_id).exists():
            raise CommandError(f"No workspace {workspace_id}.")
        try:
            fmt = format_guess(file, format)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        size = os.path.getsize(file)
        with (
            open(file, "rb") as stream,
            tqdm(
                total=size, unit="B", unit_scale=True, desc="import", disable=no_progress, file=self.stderr._out
            ) as bar,
        ):

            def progress(_rows: int) -> None:
                # Bytes read so far tell a CSV's progress without counting its rows first.
                bar.update(max(0, stream.tell() - bar.n) if fmt == "csv" else 0)

            try:
                report = entries_import(
                    workspace_id=workspace_id,
                    rows=rows_from_file(stream, fmt),
                    source=source or fmt,
                    progress=progress,
                )
            except ImportFileError as exc:
                raise CommandError(f"{exc} Nothing was imported.") from exc
            bar.update(size - bar.n)
        for result in report.rows:
            if result.status == "error":
                self.stderr.write(f"row {result.row}: {result.errors}")
        self.stdout.write(f"created {report.created}, updated {report.updated}, failed {report.failed}")
