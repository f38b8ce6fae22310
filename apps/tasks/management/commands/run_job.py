"""Run a scheduled job by name, the way `zappa invoke STAGE module.function` does remotely."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string


def declared_jobs(settings_path: Path | None = None) -> dict[str, str]:
    """Every scheduled job in zappa_settings.json (all stages): short name and dotted path."""
    path = settings_path or Path(settings.BASE_DIR) / "zappa_settings.json"
    stages = json.loads(path.read_text())
    jobs: dict[str, str] = {}
    for stage in stages.values():
        for event in stage.get("events", []):
            function = event.get("function", "")
            if function:
                jobs[function.rsplit(".", 1)[-1]] = function
                jobs[function] = function
    return jobs


class Command(BaseCommand):
    help = "Run a scheduled job declared in zappa_settings.json `events` (short name or dotted path)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="e.g. sweep or apps.tasks.jobs.sweep")

    def handle(self, *args, name, **options):
        jobs = declared_jobs()
        if name not in jobs:
            known = ", ".join(sorted(k for k in jobs if "." not in k))
            raise CommandError(f"Unknown job {name!r}. Declared jobs: {known}")
        job = import_string(jobs[name])
        event = {"detail-type": "Scheduled Event", "source": "cue.run_job", "resources": [jobs[name]], "detail": {}}
        result = job(event, None)
        self.stdout.write(json.dumps({"job": jobs[name], "result": result}, default=str))
