"""Bench harness: Django on a dedicated PostgreSQL database (BENCH_DATABASE_URL), migrated, ready for Cue's code."""

import os
import sys
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/cue_bench"


def django_on_postgres() -> str:
    """Point Django at the bench database (created if missing, migrated) and set it up; returns its URL."""
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    if not url.startswith("postgres"):
        sys.exit("The benchmarks measure Cue on PostgreSQL: set BENCH_DATABASE_URL to a postgres:// URL.")
    base, name = url.rsplit("/", 1)
    admin = psycopg2.connect(f"{base}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cursor.fetchone():
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()
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
