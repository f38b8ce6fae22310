"""Every quick bench still runs end to end (tiny sizes, figures not judged): a bench that cannot run reports nothing.

Each runs as its own process on a PostgreSQL database of its own, as an operator would run it. Not here:
bench/coldstart.py (builds two packages; bin/package is proven by tests/lambda/test_package.py) and
bench/suggest_quality.py (the whole evaluation protocol, minutes; its code path is tests/knowledge/).
Every bench, those two included, answers `--help` without touching anything.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg2
import pytest
from django.conf import settings
from psycopg2 import sql

ROOT = Path(settings.BASE_DIR)

BENCHES = {
    "console": (["--loads", "1", "--messages", "2"], "webhook sent -> card visible"),
    "tasks": (["--samples", "5", "--soak", "10"], "duplicated effects: 0"),
    "webhook_ack": (["10", "inprocess"], "SQL statements per new delivery"),
    "realtime_e2e": (["--messages", "3", "--warmup", "1"], "TOTAL dispatch → received by subscriber"),
    "webhook_to_suggestion": (
        ["--messages", "2", "--warmup", "1", "--entries", "20"],
        "TOTAL webhook accepted → suggestion received",
    ),
    "emulator_latency": (["--samples", "3", "--warmup", "1"], "emulator / in-process (median)"),
    "suggest_latency": (["--sizes", "50,100", "--queries", "5", "--evidence", "5"], "median at 100 / median at 50"),
    "faults": (["--webhooks", "20", "--workspaces", "2"], "OK: nothing lost, nothing duplicated"),
    "intercom_sync": (
        ["--articles", "60", "--conversations", "12", "--baseline", "6", "--limit", "1000"],
        "BASELINE pacing off",
    ),
}


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("the benches measure Cue on PostgreSQL: run with DATABASE_URL=postgres://...")
    return url.rsplit("/", 1)[0]


def _drop(server: str, name: str) -> None:
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        for database in (name, f"test_{name}"):
            cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
    admin.close()


def _evaluation_data_missing() -> bool:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from suggest_quality import DATA
    finally:
        sys.path.remove(str(ROOT / "bench"))
    return not DATA.exists()


@pytest.mark.slow
@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_bench_runs_and_prints_its_figures(bench):
    if bench == "suggest_latency" and _evaluation_data_missing():
        pytest.skip("bench/suggest_latency.py draws its messages from ../shared/data/bitext, not beside this checkout")
    if bench == "console" and not Path(shutil.which("chromium") or "/usr/bin/chromium").exists():
        pytest.skip("bench/console.py drives Debian's chromium, not installed here")
    server = _server_url()
    arguments, expected = BENCHES[bench]
    # Unique per run: two suites on one PostgreSQL (two checkouts, CI beside a session) never share a database.
    database = f"cue_benchcheck_{bench}_{uuid.uuid4().hex[:8]}"
    url = f"{server}/{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DJANGO_", "CUE_TEST_RUN_ID"))}
    env |= {"DATABASE_URL": url, "BENCH_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    try:
        result = subprocess.run(
            [sys.executable, str(ROOT / "bench" / f"{bench}.py"), *arguments],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        _drop(server, database)
    assert result.returncode == 0, f"bench/{bench}.py failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert expected in result.stdout, result.stdout[-3000:]


# Runs a bench as `python bench/<name>.py --help` would, then says what the process had done by then.
_HELP_PROBE = """
import json, os, runpy, sys, threading
script = sys.argv[1]
sys.argv = [script, "--help"]
sys.path.insert(0, os.path.dirname(script))
code = 0
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as exit:
    code = exit.code or 0
django = sys.modules.get("django.apps")
print(json.dumps({
    "exit": code,
    "django_set_up": bool(django and django.apps.ready),
    "threads": [t.name for t in threading.enumerate() if t is not threading.main_thread()],
}))
"""


def _databases(server: str, token: str) -> set[str]:
    admin = psycopg2.connect(f"{server}/postgres")
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [f"%{token}%"])
            return {name for (name,) in cursor.fetchall()}
    finally:
        admin.close()


@pytest.mark.parametrize("bench", sorted(p.stem for p in (ROOT / "bench").glob("[!_]*.py")))
def test_bench_help_prints_usage_and_touches_nothing(bench):
    """`--help` answers with usage and exit 0 before any database, moto or Django is set up: the database URL
    the bench would use (from the environment) names a database that must not appear."""
    server = _server_url()
    token = f"cue_helpcheck_{uuid.uuid4().hex[:8]}"
    url = f"{server}/{token}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DJANGO_", "CUE_TEST_RUN_ID"))}
    env |= {"DATABASE_URL": url, "BENCH_DATABASE_URL": url, "PYTHONUNBUFFERED": "1"}
    before = _databases(server, token)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _HELP_PROBE, str(ROOT / "bench" / f"{bench}.py")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        created = _databases(server, token) - before
    finally:
        for name in _databases(server, token):
            _drop(server, name.removeprefix("test_"))
    assert result.returncode == 0, f"bench/{bench}.py --help failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    usage, _, probe = result.stdout.rstrip().rpartition("\n")
    assert "usage" in usage.lower(), result.stdout[-2000:]
    assert "--database-url" in usage, usage
    # No Django set up, no server thread (moto's, the emulator's) started.
    assert json.loads(probe) == {"exit": 0, "django_set_up": False, "threads": []}, result.stderr[-3000:]
    assert not created, f"bench/{bench}.py --help created {created}"
