"""Sync a workspace's Help Center and/or import its closed conversations, with a progress bar; or follow a run."""

import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.accounts.models import Workspace
from apps.integrations.client import IntercomError
from apps.knowledge import sync
from apps.knowledge.models import SyncRun, SyncStatus

ACTIVE = (SyncStatus.RUNNING, SyncStatus.WAITING)


class Command(BaseCommand):
    help = (
        "Start a Help Center sync (--articles) and/or a history import (--history-days N) for a workspace and "
        "run its pages here, page by page as the tasks would (resumable: --resume RUN_ID continues one); or "
        "--follow RUN_ID to watch a run the Lambda tasks are doing. Prints a progress bar and the run's figures."
    )

    def add_arguments(self, parser):
        parser.add_argument("workspace_id", type=int)
        parser.add_argument("--articles", action="store_true", help="sync the Help Center's articles")
        parser.add_argument("--history-days", type=int, help="import the closed conversations of the last N days")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="continue a run from its cursor here")
        parser.add_argument("--follow", type=int, metavar="RUN_ID", help="watch a run the tasks are doing")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between looks when following")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")

    def handle(self, *args, workspace_id, **options):
        if not Workspace.objects.filter(pk=workspace_id).exists():
            raise CommandError(f"No workspace {workspace_id}.")
        if options["follow"] or options["resume"]:
            run_id = options["follow"] or options["resume"]
            if not SyncRun.objects.filter(pk=run_id, workspace_id=workspace_id).exists():
                raise CommandError(f"No run {run_id} in workspace {workspace_id}.")
            runs = [run_id]
        else:
            days = options["history_days"]
            if not options["articles"] and days is None:
                raise CommandError("Ask for --articles, --history-days N, or both.")
            if days is not None and not 1 <= days <= sync.settings.CUE_SYNC_HISTORY_MAX_DAYS:
                raise CommandError(f"--history-days must be 1..{sync.settings.CUE_SYNC_HISTORY_MAX_DAYS}.")
            try:
                started = sync.sync_start(
                    workspace_id=workspace_id, articles=options["articles"], history_days=days, dispatch=False
                )
            except sync.NotConnected as exc:
                raise CommandError("The workspace is not connected to Intercom.") from exc
            except sync.RunInProgress as exc:
                raise CommandError(f"{exc} Follow it with --follow {exc.run.id}.") from exc
            runs = [run.id for run in started]
        for run_id in runs:
            if options["follow"]:
                self._follow(run_id, options["interval"], options["no_progress"])
            else:
                self._drive(run_id, options["no_progress"])
            run = SyncRun.objects.get(pk=run_id)
            progress = sync.run_progress(run)
            self.stdout.write(
                f"run {run.id} ({run.kind}): {run.status}, {run.done}/{run.total} done, {run.errors} errors, "
                f"{run.pages} pages, {run.requests} requests, {run.rate_limited} x 429, "
                f"{run.paced_seconds:.1f}s paced, {progress['rate']}/s; {run.counts}"
            )
            if run.status == SyncStatus.FAILED:
                raise CommandError(f"run {run.id} failed: {run.last_error}")

    def _bar(self, run: SyncRun, disable: bool) -> tqdm:
        return tqdm(total=run.total, desc=f"{run.kind} {run.id}", unit="item", disable=disable, file=self.stderr._out)

    def _show(self, bar: tqdm, run: SyncRun) -> None:
        if run.total is not None and bar.total != run.total:
            bar.total = run.total
        bar.update(run.done - bar.n)
        bar.set_postfix(errors=run.errors, requests=run.requests, x429=run.rate_limited, status=run.status)

    def _drive(self, run_id: int, disable: bool) -> None:
        """Run the pages here as the tasks would (no transaction open while Intercom is called); wait out a
        parked rate limit. A permanent Intercom error has failed the run (reported below); a passing one
        stops here, the run resumable with --resume."""
        run = SyncRun.objects.get(pk=run_id)
        if run.status == SyncStatus.WAITING:
            SyncRun.objects.filter(pk=run_id).update(status=SyncStatus.RUNNING, resume_at=None)
        with self._bar(run, disable) as bar:
            step = "page"
            while step == "page":
                step = self._step(run_id, sync.sync_page).get("next", "")
                run = SyncRun.objects.get(pk=run_id)
                self._show(bar, run)
                if run.status == SyncStatus.WAITING:
                    resume_at = run.resume_at.timestamp() if run.resume_at else time.time()
                    time.sleep(max(0.0, resume_at - time.time()))
                    SyncRun.objects.filter(pk=run_id).update(status=SyncStatus.RUNNING, resume_at=None)
                    step = "page"
            while step == "finish":
                status = self._step(run_id, sync.sync_finish).get("status")
                step = "finish" if status == SyncStatus.RUNNING else ""
            self._show(bar, SyncRun.objects.get(pk=run_id))

    @staticmethod
    def _step(run_id: int, body) -> dict:
        try:
            return body(run_id=run_id, chain=False)
        except IntercomError as exc:
            if exc.retryable:
                raise CommandError(f"Intercom failed ({exc}); continue with --resume {run_id}.") from exc
            return {}  # the run failed with the reason

    def _follow(self, run_id: int, interval: float, disable: bool) -> None:
        run = SyncRun.objects.get(pk=run_id)
        with self._bar(run, disable) as bar:
            while True:
                run = SyncRun.objects.get(pk=run_id)
                self._show(bar, run)
                if run.status not in ACTIVE:
                    return
                time.sleep(interval)
