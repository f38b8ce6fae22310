"""Bench harness: Django on a PostgreSQL database of the bench's own, AWS answered by moto, and how figures print.

Imported as `from _setup import ...` (a script's own folder is on sys.path).
"""

import argparse
import atexit
import os
import statistics
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = "postgres://postgres@127.0.0.1:5432"
_NAMED_HERE: set[str] = set()  # database URLs this process made up (see bench_parser): dropped when it exits


def bench_parser(doc: str, *, database: str, env: str = "DATABASE_URL") -> argparse.ArgumentParser:
    """The argument parser every bench starts from: its docstring as help, and --database-url.

    --database-url defaults to the environment variable the bench has always read, else to `database` on the
    local server with this process's id appended, so that two people benching at once never share a
    database. A database the bench names that way is dropped when it exits; one you name is kept (reused).
    Parse before anything is set up: `--help` must touch nothing.
    """
    summary, _, details = (doc or "").strip().partition("\n")
    parser = argparse.ArgumentParser(
        description=summary, epilog=details.strip() or None, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default = os.environ.get(env)
    if not default:
        default = f"{SERVER_URL}/{database}_{os.getpid()}"
        _NAMED_HERE.add(default)
    parser.add_argument(
        "--database-url",
        default=default,
        help=f"PostgreSQL for this run (default: ${env}, else {database}_<pid>, its own): %(default)s",
    )
    return parser


def _admin(url: str):
    import dj_database_url

    db = dj_database_url.parse(url)
    admin = psycopg2.connect(
        dbname="postgres", host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], password=db["PASSWORD"]
    )
    admin.autocommit = True
    return admin, db["NAME"]


def database_ensure(url: str) -> None:
    """Create the PostgreSQL database a postgres:// URL names, unless it exists (dropped at exit if the
    bench named it, see bench_parser)."""
    admin, name = _admin(url)
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if url in _NAMED_HERE:
                atexit.register(_database_drop, url)
    admin.close()


def _database_drop(url: str) -> None:
    admin, name = _admin(url)
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    admin.close()


def django_behind_moto(database_url: str):
    """Django (test settings) on the database URL given (--database-url), with every AWS call answered by
    moto's server on loopback; returns the started tests.support.aws.MotoServer. Call after parsing the
    arguments and before anything makes a boto3 client (zappa.asynchronous makes some when first imported)."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("MQTT_URL", "mqtt://127.0.0.1:1883")
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # a log line per message would be part of what is timed
    from tests.support.aws import MotoServer

    moto = MotoServer().start()
    os.environ.update(moto.env())  # nothing here can reach AWS
    import django

    django.setup()
    return moto


def stage_handler(moto, stage: str):
    """The real Zappa handler of a stage, its settings module written by Zappa and its remote_env held by moto:
    a tests.support.lambda_harness.Handler to use as a context manager."""
    import tempfile

    from tests.support.lambda_harness import Handler, stage_settings_values, write_stage_settings

    stage_dir = write_stage_settings(stage, Path(tempfile.mkdtemp(prefix="cue-bench-"))).parent
    values = stage_settings_values(stage_dir / "zappa_settings.py")
    moto.put_remote_env(values["REMOTE_ENV"], {"CUE_REMOTE_ENV_LOADED": "1"})
    return Handler(stage_dir, function_name=f"{values['PROJECT_NAME']}-{values['API_STAGE']}")


def remote_env_on_loopback(s3_url: str, values: dict):
    """Beside in-process moto: the stage's remote_env file held by moto's server on loopback.

    The handler reads remote_env with a plain signed GET (project.remote_env), not through boto3, so
    in-process moto cannot answer it; AWS_ENDPOINT_URL_S3 points that GET at the server. Returns the
    started tests.support.aws.MotoServer (stop it when done).
    """
    from tests.support.aws import MotoServer

    server = MotoServer().start()
    server.put_remote_env(s3_url, values)
    os.environ["AWS_ENDPOINT_URL_S3"] = server.url
    return server


def p95(values: list[float]) -> float:
    """The 95th percentile (statistics.quantiles, inclusive: never above the max), the same in every bench."""
    return statistics.quantiles(values, n=20, method="inclusive")[18] if len(values) > 1 else values[0]


def latency_line(name: str, values_ms: list[float], width: int = 44) -> str:
    """One figure line: median, p95 and max of a list of milliseconds."""
    return (
        f"{name:<{width}} median {statistics.median(values_ms):7.2f} ms   p95 {p95(values_ms):7.2f} ms   "
        f"max {max(values_ms):7.2f} ms"
    )


def django_on_postgres(url: str) -> str:
    """Point Django at the bench database (created if missing, migrated) and set it up; returns its URL."""
    if not url.startswith("postgres"):
        sys.exit("The benchmarks measure Cue on PostgreSQL: pass --database-url postgres://...")
    database_ensure(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_DEBUG", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return url


def new_workspace(name: str) -> int:
    from apps.accounts.models import Workspace

    return Workspace.objects.create(name=name).id


def drop_workspace(workspace_id: int) -> None:
    from apps.accounts.models import Workspace

    Workspace.objects.filter(pk=workspace_id).delete()
