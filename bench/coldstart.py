"""Cold start and package size of Cue's dev zip against a bare `django-admin startproject`, built the same way.

    .venv/bin/python bench/coldstart.py [--runs 15] [--importtime] [--bytecode]
                                        [--database-url postgres://postgres@127.0.0.1:5432/cue_bench]

Both zips are built as `bin/package` builds Cue's (tools/artifact.py: `zappa package` from the
runtime-only venv requirements.txt installs and the project's runtime folders, other languages'
translations, stale metadata and symbol tables left out) from the same venv with the same
exclude list; without --bytecode neither has .pyc, with it both are also measured with
bin/package's bytecode step (its default: precompiled, third-party modules as bytecode alone, each
project's own code with its source), so each ratio compares like with like.

Each run is a fresh interpreter that sees only the unpacked zip plus the libraries the Lambda
runtime provides (tests/support/package.py), writing no bytecode (as on read-only /var/task), and
calls the function's configured handler: Cue's stage `lambda_handler` (project.lambda_entry),
bare's zip-root `handler.lambda_handler` (Zappa's default):

- Cue answers GET /api/me with a valid JWT; its cold start reads the stage's remote_env from
  S3 (moto's server on 127.0.0.1) and queries PostgreSQL (a dedicated bench database).
- bare answers GET /admin/login/ (the page startproject wires; no database query), with
  DEBUG=False and ALLOWED_HOSTS accepting the API Gateway host.

Runs alternate Cue and bare (which goes first alternates too). Prints figures; asserts nothing.
--importtime adds where the import time goes (without bytecode, and with it under --bytecode).
"""

import argparse
import json
import logging
import os
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

from _setup import bench_parser, database_ensure
from cryptography.fernet import Fernet

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from tests.support.aws import MotoServer  # noqa: E402
from tests.support.events import apigw_v1  # noqa: E402
from tests.support.package import VENV, FreshLambda, Package, build_artifact, lambda_runtime_dir, unpack  # noqa: E402
from tools.artifact import add_bytecode, write_zip  # noqa: E402

MB = 1_000_000
TARGET_RATIO = 1.5
TARGET_ZIPPED_MB = 20
BENCH_EMAIL = "coldstart-bench@example.com"


def parse_args() -> argparse.Namespace:
    parser = bench_parser(__doc__, database="cue_bench_coldstart")  # --database-url: created, migrated if needed
    parser.add_argument("--runs", type=int, default=15, help="fresh processes per project (default 15)")
    parser.add_argument("--importtime", action="store_true", help="also print import time per top-level package")
    parser.add_argument(
        "--bytecode", action="store_true", help="also measure both packages after bin/package's bytecode step"
    )
    return parser.parse_args()


# ------------------------------------------------------------------------------
# Cue's bench database, a member and a token
# ------------------------------------------------------------------------------
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
    database_ensure(url)
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
    """`django-admin startproject bare`, made to answer behind API Gateway, with Cue's exclude lists."""
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
        "exclude_glob": cue_dev["exclude_glob"],
    }
    (project / "zappa_settings.json").write_text(json.dumps({"dev": stage}, indent=4))
    return project


def build(name: str, project_dir: Path, work: Path, aws_env: dict, runtime_paths=()) -> tuple[Package, int]:
    """The package without bytecode, and the size of the zip `zappa package` made before bin/package's steps.

    Both from the same runtime-only venv (Cue's requirements.txt); bare's own code is its `bare/` and manage.py.
    """
    print(f"building {name} as bin/package dev --no-bytecode does ...", flush=True)
    out = work / f"{name}-dev.zip"
    artifact = build_artifact(
        "dev",
        project_dir=project_dir,
        out_zip=out,
        aws_env=aws_env,
        bytecode=False,
        runtime_paths=runtime_paths,
        requirements=BASE_DIR / "requirements.txt",
    )
    return unpack(Path(artifact["zip_path"]), work / f"{name}-task"), artifact["zappa_zipped_bytes"]


def with_bytecode(package: Package, work: Path) -> Package:
    """The same package after bin/package's bytecode step, zipped the same way (for its size)."""
    root = work / f"{package.root.name}-pyc"
    shutil.copytree(package.root, root)
    add_bytecode(root)
    return Package(zip_path=write_zip(root, work / f"{package.zip_path.stem}-pyc.zip"), root=root)


# ------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------
@dataclass
class Subject:
    name: str
    package: Package
    function_name: str
    handler: str  # what the Lambda function's configuration names
    event: dict
    samples: list[dict] = field(default_factory=list)

    @property
    def root(self) -> Path:
        return self.package.root

    def median(self, key: str) -> float:
        return statistics.median(sample[key] for sample in self.samples)


def cold_start(subject: Subject, runtime: Path, aws_env: dict, python_flags=()) -> tuple[dict, str]:
    with FreshLambda(
        subject.root, runtime, aws_env, subject.function_name, python_flags, handler=subject.handler
    ) as container:
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
            cue_package, cue_zappa_bytes = build("cue", BASE_DIR, work, aws_env)
            bare_package, bare_zappa_bytes = build(
                "bare", create_bare_project(work, cue_dev), work, aws_env, ("bare", "manage.py")
            )
            runtime = lambda_runtime_dir(work / "lambda-runtime")
            me = apigw_v1("GET", "/api/me", headers={"Authorization": f"Bearer {token}"})
            cue = Subject("cue", cue_package, "cue-dev", cue_dev["lambda_handler"], me)
            bare = Subject("bare", bare_package, "bare-dev", "handler.lambda_handler", apigw_v1("GET", "/admin/login/"))
            pairs = [(cue, bare)]
            if args.bytecode:
                pairs.append(
                    tuple(
                        Subject(f"{s.name}+pyc", with_bytecode(s.package, work), s.function_name, s.handler, s.event)
                        for s in (cue, bare)
                    )
                )

            print(f"measuring {args.runs} cold starts each ...", flush=True)
            for run in range(args.runs):
                for pair in pairs:
                    for subject in pair if run % 2 == 0 else pair[::-1]:
                        subject.samples.append(cold_start(subject, runtime, aws_env)[0])
            profiles = {}
            if args.importtime:
                profiles = {s.name: import_profile(s, runtime, aws_env) for pair in pairs for s in pair}
            zappa_sizes = {"cue": cue_zappa_bytes, "bare": bare_zappa_bytes}
            report(args, zappa_sizes, pairs, profiles)
    finally:
        moto.stop()


def report(args, zappa_sizes: dict, pairs: list, profiles: dict) -> None:
    print()
    print(f"Python {sys.version.split()[0]} ({VENV}); {args.runs} cold starts each, alternating")
    print(f"cue:  GET /api/me with a JWT through {pairs[0][0].handler}")
    print("      (remote_env read from moto's S3, PostgreSQL queries)")
    print("bare: GET /admin/login/ of django-admin startproject (no database) through handler.lambda_handler")
    print()
    print("package sizes (MB = 10^6 bytes)")
    for name, zipped in zappa_sizes.items():
        print(f"  {name + ' (zappa package)':22} zipped {zipped / MB:6.1f} MB")
    for subject in (s for pair in pairs for s in pair):
        package = subject.package
        print(
            f"  {subject.name + ' (bin/package)':22} zipped {package.zipped_bytes / MB:6.1f} MB"
            f"   unzipped {package.unzipped_bytes / MB:6.1f} MB"
        )
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
    for cue, _bare in pairs:
        zipped = cue.package.zipped_bytes / MB
        verdict = "meets" if zipped <= TARGET_ZIPPED_MB else "MISSES"
        print(f"{cue.name} package zipped: {zipped:.1f} MB  ({verdict} <= {TARGET_ZIPPED_MB} MB)")
    for cue, bare in (pair for pair in pairs if pair[0].name in profiles):
        cue_ms, bare_ms = profiles[cue.name], profiles[bare.name]
        print()
        print(
            f"self import time per top-level package, one cold start each (-X importtime), ms: {cue.name}, {bare.name}"
        )
        print(f"  {'package':28} {cue.name:>8} {bare.name:>8} {'diff':>9}")
        extra = Counter({name: cue_ms[name] - bare_ms[name] for name in cue_ms | bare_ms})
        for name, difference in extra.most_common(15):
            print(f"  {name:28} {cue_ms[name]:8.1f} {bare_ms[name]:8.1f} {difference:9.1f}")
        print(f"  {'all':28} {sum(cue_ms.values()):8.1f} {sum(bare_ms.values()):8.1f}")


if __name__ == "__main__":
    main()
