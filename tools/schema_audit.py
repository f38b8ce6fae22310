"""Does the API do what /api/schema/ says? schemathesis over the whole schema, every check, as a member of a
workspace with data; prints the failures counted by check (and the distinct ones by operation).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_audit .venv/bin/python tools/schema_audit.py \
        [--max-examples 25] [--seed 1] [--verbose]

A database of its own (the URL's name suffixed with this process's id) is created, migrated, seeded and
dropped. The app is called in process (WSGI), AWS answered by moto on loopback. Not a test: the suite's
tests/security/test_fuzz_api.py asserts the same checks find nothing; this prints how much they find.
"""

import argparse
import os
import sys
import threading
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _setup import database_ensure, django_behind_moto  # noqa: E402


def _drop(url: str) -> None:
    import dj_database_url
    import psycopg2
    from psycopg2 import sql

    db = dj_database_url.parse(url)
    admin = psycopg2.connect(dbname="postgres", host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"])
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(db["NAME"])))
    admin.close()


class _IntercomRefuses(BaseHTTPRequestHandler):
    def _refuse(self):
        body = b'{"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-examples", type=int, default=25, help="fuzzing examples per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print each distinct failure's title")
    args = parser.parse_args()

    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cue_audit")
    if not base.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a postgres:// URL (the database named is suffixed and dropped after).")
    url = f"{base}_audit_{os.getpid()}"
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("LOG_LEVEL", "ERROR")  # every 4xx logs a warning; a 500 still prints
    # Intercom is never called for real: a stand-in on loopback refuses every token (a PUT's GET /me: 401), as
    # the suite's fuzz test has it.
    intercom = ThreadingHTTPServer(("127.0.0.1", 0), _IntercomRefuses)
    threading.Thread(target=intercom.serve_forever, daemon=True).start()
    for region in ("US", "EU", "AU"):
        os.environ[f"INTERCOM_API_HOST_{region}"] = f"http://127.0.0.1:{intercom.server_port}"
    database_ensure(url)
    moto = django_behind_moto(url)
    try:
        _run(args)
    finally:
        from django.db import connections

        connections.close_all()
        moto.stop()
        _drop(url)


def _run(args) -> None:
    import schemathesis
    from django.core.management import call_command
    from schemathesis.config import SchemathesisConfig

    from apps.accounts.api import token_pair_for
    from project.wsgi import application
    from tests.support.api_data import workspace_with_data

    call_command("migrate", verbosity=0)
    owner = workspace_with_data()
    token = token_pair_for(owner.user)["access"]

    config = SchemathesisConfig()
    config.update(seed=args.seed, max_failures=None)
    project = config.projects.override
    project.update(headers={"Authorization": f"Bearer {token}"}, workers=1)
    project.checks.update(included_check_names=["all"])
    # NUL is refused in every text field (DRF's rule; PostgreSQL cannot store it): as in the suite's fuzz test.
    project.generation.update(max_examples=args.max_examples, database="none", no_shrink=True, allow_x00=False)
    # Over HTTP, as a client sees it (schemathesis's in-process WSGI transport trips on some of its own options).
    server = make_server("127.0.0.1", 0, application, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{server.server_port}/api/schema/", config=config)
        _report(schema, args)
    finally:
        server.shutdown()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass


def _report(schema, args) -> None:
    import schemathesis
    from schemathesis.checks import CHECKS
    from schemathesis.engine import Status, from_schema
    from schemathesis.engine import events as engine_events

    by_check: Counter = Counter()
    distinct: dict[str, set] = defaultdict(set)
    details: dict[tuple, str] = {}
    operations: set = set()
    errors: list[str] = []
    requests = 0
    for event in from_schema(schema).execute():
        if isinstance(event, engine_events.ScenarioFinished):
            if event.label:
                operations.add(event.label)
            requests += len(event.recorder.interactions)
            for case_checks in event.recorder.checks.values():
                for check in case_checks:
                    if check.status == Status.FAILURE and check.failure_info is not None:
                        failure = check.failure_info.failure
                        operation = failure.operation or event.label
                        key = (operation, failure.title, getattr(failure, "status_code", ""))
                        if key not in distinct[check.name]:
                            distinct[check.name].add(key)
                            by_check[check.name] += 1
                            message = " | ".join(failure.message.strip().splitlines()[:4])[:300]
                            details[key] = f"{message}\n      {check.failure_info.code_sample[:400]}"
        elif isinstance(event, engine_events.NonFatalError):
            errors.append(f"{event.label}: {event.info.message}")
        elif isinstance(event, engine_events.FatalError):
            errors.append(f"fatal: {event.exception!r}")

    print(f"schemathesis {schemathesis.__version__}: {len(operations)} operations, {requests} requests, all checks")
    print(f"{'check':<32} distinct failures (operation, failure, status)")
    for name in sorted(set(by_check) | {check.__name__ for check in CHECKS.get_all()}):
        print(f"{name:<32} {by_check[name]}")
    print(f"{'TOTAL':<32} {sum(by_check.values())}")
    undocumented = {key[2] for key in distinct["status_code_conformance"]}
    print(f"undocumented status codes seen: {sorted(undocumented)}")
    if errors:
        print(f"errors (operations that could not run): {len(errors)}")
        for line in errors:
            print(f"  {line}")
    if args.verbose:
        for name, keys in sorted(distinct.items()):
            for label, title, status in sorted(keys, key=str):
                print(f"  {name}: {label} -> {status} {title}\n      {details[(label, title, status)]}")


if __name__ == "__main__":
    main()
