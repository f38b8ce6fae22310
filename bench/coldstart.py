"""Cold start and package size of Cue's dev zip against a bare `django-admin startproject`, both built by Zappa.

    .venv/bin/python bench/coldstart.py [--runs 15] [--importtime] [--bytecode]
                                        [--database-url postgres://postgres@127.0.0.1:5432/cue_bench]

Each run is a fresh interpreter that sees only the unpacked zip plus the libraries the Lambda
runtime provides (tests/support/package.py), with no bytecode cache (as on read-only /var/task):

- Cue answers GET /api/me with a valid JWT; its cold start reads the stage's remote_env from
  S3 (moto's server on 127.0.0.1) and queries PostgreSQL (a dedicated bench database).
- bare answers GET /admin/login/ (the page startproject wires; no database query), with
  DEBUG=False and ALLOWED_HOSTS accepting the API Gateway host.

Runs alternate Cue and bare (which goes first alternates too). Prints figures; asserts nothing.
--importtime adds where the import time goes; --bytecode adds both packages with precompiled
bytecode (what a build step after `zappa package` could ship; Zappa itself ships none).
"""

import argparse
import compileall
import json
import logging
import os
import py_compile
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.support.aws import MotoServer  # noqa: E402
from tests.support.events import apigw_v1  # noqa: E402
from tests.support.package import VENV, FreshLambda, Package, build_package, lambda_runtime_dir, unpack  # noqa: E402

MB = 1_000_000
TARGET_RATIO = 1.5
TARGET_ZIPPED_MB = 20
BENCH_EMAIL = "coldstart-bench@example.com"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per project (default 15)")
    parser.add_argument(
        "--database-url",
        default="postgres://postgres@127.0.0.1:5432/cue_bench",
        help="Cue's bench database (created and migrated if needed)",
    )
    parser.add_argument("--importtime", action="store_true", help="also print import time per top-level package")
    parser.add_argument(
        "--bytecode", action="store_true", help="also measure both packages with precompiled .pyc added"
    )
    return parser.parse_args()


# ------------------------------------------------------------------------------
# Cue's bench database, a member and a token
# ------------------------------------------------------------------------------
def ensure_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    server = urlunsplit(parts._replace(path="/postgres"))
    connection = psycopg2.connect(server)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    connection.close()


# Runs in a child process so this one stays free of Django (and of its logging configuration).
_MINT_TOKEN = f"""
import django
django.setup()
from apps.accounts.api import token_pair_for
from apps.accounts.models import User
from apps.accounts.services import workspace_signup
user = User.objects.filter(email="{BENCH_EMAIL}").first()
if user is None:
    user = workspace_signup(email="{BENCH_EMAIL}", password="{secrets.token_urlsafe(20)}", workspace_name="Bench").user
print(token_pair_for(user)["access"])
"""


def prepare_cue_database(url: str, secret_key: str, field_key: str) -> str:
    """Migrate the bench database and return an access token for a member (created once)."""
    ensure_database(url)
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "DJANGO_SECRET_KEY": secret_key,
        "CUE_FIELD_KEY": field_key,
        "DATABASE_URL": url,
        "JWT_ACCESS_MINUTES": "600",  # outlives any number of runs
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=BASE_DIR, check=True, env=env)
    minted = subprocess.run(
        [sys.executable, "-c", _MINT_TOKEN], cwd=BASE_DIR, env=env, check=True, capture_output=True, text=True
    )
    return minted.stdout.split()[-1]


# ------------------------------------------------------------------------------
# The two packages
# ------------------------------------------------------------------------------
def cue_stage_config(stage: str) -> dict:
    stages = json.loads((BASE_DIR / "zappa_settings.json").read_text())
    config = dict(stages[stages[stage]["extends"]]) if "extends" in stages[stage] else {}
    return config | stages[stage]


def create_bare_project(parent: Path, cue_dev: dict) -> Path:
    """`django-admin startproject bare`, made to answer behind API Gateway, with Cue's exclude list."""
    project = parent / "bare"
    project.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", "bare", str(project)], check=True)
    settings_py = project / "bare" / "settings.py"
    settings_py.write_text(
        settings_py.read_text()
        + "\n# Bench: a deployed stage (startproject's generated SECRET_KEY stays).\n"
        + "DEBUG = False\n"
        + 'ALLOWED_HOSTS = [".execute-api.us-east-1.amazonaws.com"]\n'
    )
    stage = {
        "project_name": "bare",
        "django_settings": "bare.settings",
        "runtime": cue_dev["runtime"],
        "aws_region": cue_dev["aws_region"],
        "s3_bucket": "bare-bench-deployments",
        "debug": cue_dev["debug"],
        "log_level": cue_dev["log_level"],
        "exclude": cue_dev["exclude"],
    }
    (project / "zappa_settings.json").write_text(json.dumps({"dev": stage}, indent=4))
    return project


def build(name: str, project_dir: Path, work: Path, aws_env: dict) -> Package:
    print(f"building {name} with zappa package dev ...", flush=True)
    zip_path = build_package("dev", project_dir=project_dir, out_zip=work / f"{name}-dev.zip", aws_env=aws_env)
    return unpack(zip_path, work / f"{name}-task")


# ------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------
@dataclass
class Subject:
    name: str
    root: Path  # the unpacked zip
    function_name: str
    event: dict
    samples: list[dict] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(sample[key] for sample in self.samples)


def with_bytecode(subject: Subject, work: Path) -> Subject:
    """The same package with .pyc a build step could add: unchecked-hash, so valid whatever the files' mtimes."""
    root = work / f"{subject.root.name}-pyc"
    shutil.copytree(subject.root, root)
    compileall.compile_dir(root, quiet=1, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    return Subject(f"{subject.name}+pyc", root, subject.function_name, subject.event)


def cold_start(subject: Subject, runtime: Path, aws_env: dict, python_flags=()) -> tuple[dict, str]:
    with FreshLambda(subject.root, runtime, aws_env, subject.function_name, python_flags) as container:
        answer = container.invoke(subject.event)
        status = answer["result"].get("statusCode")
        if status != 200:
            raise SystemExit(f"{subject.name} answered {status}, not 200:\n{container.stderr()[-3000:]}")
        return answer, container.stderr()


def import_profile(subject: Subject, runtime: Path, aws_env: dict) -> Counter:
    """Self import time (ms) per top-level package in one cold start, from `python -X importtime`."""
    _, stderr = cold_start(subject, runtime, aws_env, python_flags=("-X", "importtime"))
    per_package: Counter = Counter()
    for match in re.finditer(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", stderr, re.MULTILINE):
        per_package[match.group(2).split(".")[0]] += int(match.group(1)) / 1000
    return per_package


def main() -> None:
    args = parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server: no access log
    secret_key = secrets.token_urlsafe(50)
    field_key = Fernet.generate_key().decode()
    token = prepare_cue_database(args.database_url, secret_key, field_key)
    cue_dev = cue_stage_config("dev")

    moto = MotoServer().start()
    try:
        moto.put_remote_env(
            cue_dev["remote_env"],
            {"DJANGO_SECRET_KEY": secret_key, "DATABASE_URL": args.database_url, "CUE_FIELD_KEY": field_key},
        )
        aws_env = moto.env()
        with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
            work = Path(tmp)
            cue_package = build("cue", BASE_DIR, work, aws_env)
            bare_package = build("bare", create_bare_project(work, cue_dev), work, aws_env)
            runtime = lambda_runtime_dir(work / "lambda-runtime")
            me = apigw_v1("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
            cue = Subject("cue", cue_package.root, "cue-dev", me)
            bare = Subject("bare", bare_package.root, "bare-dev", apigw_v1("GET", "/admin/login/"))
            pairs = [(cue, bare)]
            if args.bytecode:
                pairs.append((with_bytecode(cue, work), with_bytecode(bare, work)))

            print(f"measuring {args.runs} cold starts each ...", flush=True)
            for run in range(args.runs):
                for pair in pairs:
                    for subject in pair if run % 2 == 0 else pair[::-1]:
                        subject.samples.append(cold_start(subject, runtime, aws_env)[0])
            profiles = {s.name: import_profile(s, runtime, aws_env) for s in (cue, bare)} if args.importtime else {}
            report(args, cue_package, bare_package, pairs, profiles)
    finally:
        moto.stop()


def report(args, cue_package: Package, bare_package: Package, pairs: list, profiles: dict) -> None:
    print()
    print(f"Python {sys.version.split()[0]} ({VENV}); {args.runs} cold starts each, alternating")
    print("cue:  GET /api/me with a JWT (remote_env read from moto's S3, PostgreSQL queries)")
    print("bare: GET /admin/login/ of django-admin startproject (no database)")
    print()
    print("package sizes (MB = 10^6 bytes)")
    for name, package in (("cue", cue_package), ("bare", bare_package)):
        print(f"  {name:5} zipped {package.zipped_bytes / MB:6.1f} MB   unzipped {package.unzipped_bytes / MB:6.1f} MB")
    print()
    print("cold start, ms: median (min-max)")
    rows = (
        ("interpreter startup (spawn -> child script top)", "startup_ms"),
        ("import handler", "handler_import_ms"),
        ("first response (lambda_handler call)", "call_ms"),
        ("in child: script top -> first response", "since_top_ms"),
        ("parent wall clock: spawn -> first response", "wall_ms"),
    )
    for label, key in rows:
        print(f"  {label}")
        for subject in (s for pair in pairs for s in pair):
            values = [sample[key] for sample in subject.samples]
            print(f"    {subject.name:9} {statistics.median(values):8.1f}  ({min(values):.1f}-{max(values):.1f})")
    print()
    for cue, bare in pairs:
        for label, key in (("in child", "since_top_ms"), ("wall clock", "wall_ms")):
            ratio = cue.median(key) / bare.median(key)
            verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
            print(f"median cold-start ratio {cue.name}/{bare.name} ({label}): {ratio:.2f}  ({verdict} <= 1.5)")
    zipped = cue_package.zipped_bytes / MB
    verdict = "meets" if zipped <= TARGET_ZIPPED_MB else "MISSES"
    print(f"cue package zipped: {zipped:.1f} MB  ({verdict} <= {TARGET_ZIPPED_MB} MB)")
    if profiles:
        cue_ms, bare_ms = profiles["cue"], profiles["bare"]
        print()
        print("self import time by top-level package, one cold start each (-X importtime), ms")
        print(f"  {'package':28} {'cue':>8} {'bare':>8} {'cue-bare':>9}")
        extra = Counter({name: cue_ms[name] - bare_ms[name] for name in cue_ms | bare_ms})
        for name, difference in extra.most_common(15):
            print(f"  {name:28} {cue_ms[name]:8.1f} {bare_ms[name]:8.1f} {difference:9.1f}")
        print(f"  {'all':28} {sum(cue_ms.values()):8.1f} {sum(bare_ms.values()):8.1f}")


if __name__ == "__main__":
    main()
