"""The local Lambda emulator: real HTTP in, the stage's handler, tasks through moto's SNS and back, schedules."""

import json
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from apps.accounts.models import Workspace
from apps.tasks.models import TaskRun, TaskStatus
from tests.conftest import PASSWORD
from tools.emulator import __main__ as cli
from tools.emulator.apigateway import ApiGateway, HttpRequest
from tools.emulator.stage import StageEmulator

MAKE_WORKSPACE = "tests.tasks.sample_tasks.make_workspace"


@pytest.fixture
def start_emulator(moto_server, dev_settings_dir, transactional_db):
    """Start the dev stage's emulator on a free port (options as keywords); stopped after the test."""
    moto_server.reset()
    started: list[StageEmulator] = []

    def start(**options) -> StageEmulator:
        lines: list[str] = []
        emulator = StageEmulator(
            "dev",
            aws=moto_server,
            settings_dir=dev_settings_dir,
            port=0,
            remote_env={"CUE_REMOTE_ENV_LOADED": "1"},
            log=lines.append,
            **{"schedules": False, **options},
        )
        emulator.lines = lines
        started.append(emulator.start())
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def signed_in(emulator: StageEmulator, membership) -> dict:
    """Sign in over HTTP through the emulator; the Authorization header for the next requests."""
    answer = requests.post(
        f"{emulator.url}/api/auth/token", json={"email": membership.user.email, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access']}"}


def dead_task(owner, name: str) -> TaskRun:
    """A task the operator retries by hand: POST /api/tasks/<id>/retry dispatches it again."""
    return TaskRun.objects.create(
        name=MAKE_WORKSPACE,
        args=[name],
        status=TaskStatus.DEAD,
        attempts=5,
        workspace=owner.workspace,
        sent_at=timezone.now(),
    )


def starts(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("START RequestId:")]


def test_the_answer_comes_before_the_task_runs(start_emulator, owner):
    """HTTP answers once the task is published; the deliverer then runs it through the handler."""
    emulator = start_emulator()
    auth = signed_in(emulator, owner)
    run = dead_task(owner, "emulated-once")
    emulator.deliverer.pause()

    answer = requests.post(f"{emulator.url}/api/tasks/{run.id}/retry", headers=auth, timeout=30)

    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "pending"
    assert answer.headers["x-amzn-RequestId"]
    assert [d.message_id for d in emulator.deliverer.deliveries], "published to SNS before the answer"
    assert not Workspace.objects.filter(name="emulated-once").exists()
    emulator.deliverer.resume()
    assert emulator.wait_idle(timeout=30)
    assert Workspace.objects.filter(name="emulated-once").count() == 1
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.SUCCEEDED, 1)
    triggers = [line.split("\t")[1] for line in starts(emulator.lines)]
    assert triggers[-2] == f"v1 POST /dev/api/tasks/{run.id}/retry"
    assert triggers[-1].startswith("sns ")
    assert os.environ.get("CUE_REMOTE_ENV_LOADED") == "1", "the handler loaded the stage's remote_env from moto"


def test_every_message_delivered_twice_still_has_one_effect(start_emulator, owner):
    emulator = start_emulator(duplicate_rate=1.0)
    auth = signed_in(emulator, owner)
    run = dead_task(owner, "emulated-twice")

    assert requests.post(f"{emulator.url}/api/tasks/{run.id}/retry", headers=auth, timeout=30).status_code == 202
    assert emulator.wait_idle(timeout=30)

    [first, duplicate] = emulator.deliverer.deliveries
    assert first.message_id == duplicate.message_id
    assert (first.copy, duplicate.copy) == (0, 1)
    assert len(first.invocations) == len(duplicate.invocations) == 1
    assert Workspace.objects.filter(name="emulated-twice").count() == 1
    run.refresh_from_db()
    assert (run.status, run.attempts) == (TaskStatus.SUCCEEDED, 1)
    assert any(line.split("\t")[1].endswith("duplicate") for line in starts(emulator.lines))


def test_delivery_waits_for_its_delay_and_fast_forwards(start_emulator, owner):
    """With delay=60, nothing is delivered until the emulator's clock has moved a minute."""
    emulator = start_emulator(delay=60)
    auth = signed_in(emulator, owner)
    run = dead_task(owner, "emulated-later")

    assert requests.post(f"{emulator.url}/api/tasks/{run.id}/retry", headers=auth, timeout=30).status_code == 202
    assert not emulator.deliverer.is_idle()
    assert emulator.advance(timedelta(seconds=59)) == 0
    assert not Workspace.objects.filter(name="emulated-later").exists()
    assert emulator.advance(timedelta(seconds=1)) == 1
    assert emulator.wait_idle(timeout=30)
    assert Workspace.objects.filter(name="emulated-later").count() == 1
    [delivery] = emulator.deliverer.deliveries
    assert delivery.delivered_at[0] - delivery.received_at >= 60


def test_a_rate_one_minute_job_fires_when_the_clock_is_fast_forwarded(start_emulator):
    """apps.tasks.jobs.sweep (rate(1 minute)) fires after a minute and sends a task whose first send was lost."""
    emulator = start_emulator(schedules=True)
    run = TaskRun.objects.create(name=MAKE_WORKSPACE, args=["swept-by-the-emulator"])
    TaskRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    assert emulator.scheduler.fired == []

    emulator.advance(timedelta(minutes=1))
    assert emulator.wait_idle(timeout=30)

    assert "cue-dev-apps.tasks.jobs.sweep" in [name for name, _ in emulator.scheduler.fired]
    run.refresh_from_db()
    assert run.status == TaskStatus.SUCCEEDED
    assert Workspace.objects.filter(name="swept-by-the-emulator").count() == 1
    triggers = [line.split("\t")[1] for line in starts(emulator.lines)]
    assert "schedule cue-dev-apps.tasks.jobs.sweep rate(1 minute)" in triggers
    emulator.advance(timedelta(minutes=1))
    # Only the sweep's firings: a cron job (purge at 03:30, digest at 06:00 UTC) may fall due on the real clock.
    sweeps = [name for name, _ in emulator.scheduler.fired if name == "cue-dev-apps.tasks.jobs.sweep"]
    assert len(sweeps) == 2, "and again a minute later"
    assert emulator.wait_idle(timeout=30)


_failures = {"left": 0}


def fails_then_succeeds(event, context):
    """An SNS command that raises until `_failures['left']` runs out (Lambda then retries it)."""
    if _failures["left"]:
        _failures["left"] -= 1
        raise RuntimeError("not yet")
    return "done"


def test_a_failed_async_invocation_is_retried_like_lambda(start_emulator, moto_server):
    emulator = start_emulator(retry_delays=(60.0, 120.0))
    _failures["left"] = 1
    message = json.dumps({"command": f"{__name__}.fails_then_succeeds"})
    moto_server.client("sns").publish(TopicArn=emulator.deliverer.topic_arn, Message=message)
    for _ in range(100):
        if emulator.function.running == 0 and emulator.deliverer.deliveries[0].invocations:
            break
        threading.Event().wait(0.05)
    [delivery] = emulator.deliverer.deliveries
    assert delivery.invocations[0].failed
    assert any(line.startswith("[ERROR] RuntimeError: not yet") for line in emulator.lines)
    emulator.advance(timedelta(seconds=60))
    assert emulator.wait_idle(timeout=30)
    assert [i.failed for i in delivery.invocations] == [True, False]
    assert delivery.invocations[1].result == "done"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_http_through_the_emulator_in_both_payload_versions(start_emulator, version):
    emulator = start_emulator(event_version=version)
    health = requests.get(f"{emulator.url}/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    signup = requests.post(
        f"{emulator.url}/api/auth/signup",
        json={"email": f"{version}@example.com", "password": PASSWORD, "workspace_name": f"Emulated {version}"},
        timeout=30,
    )
    assert signup.status_code == 201, signup.text
    assert signup.json()["workspace"]["name"] == f"Emulated {version}"
    outside = requests.get(emulator.url.rsplit("/", 1)[0] + "/healthz", timeout=30)
    assert (outside.status_code, outside.json()) == (403, {"message": "Missing Authentication Token"})
    reports = [line for line in emulator.lines if line.startswith("REPORT RequestId:")]
    assert "Init Duration" in reports[0], "the first invocation is a cold start"
    assert "Init Duration" not in reports[-1], "the container is warm afterwards"
    assert "Memory Size: 1024 MB" in reports[0]


# ------------------------------------------------------------------------------
# API Gateway's events and responses
# ------------------------------------------------------------------------------
def request(method="GET", target="/dev/api/members?page=2&tag=a&tag=b", body=b"", headers=()):
    base = [("Host", "127.0.0.1:8000"), ("Cookie", "csrftoken=abc; sessionid=xyz"), ("Accept", "*/*")]
    return HttpRequest(method=method, target=target, headers=base + list(headers), body=body, source_ip="10.1.2.3")


def test_v1_event_is_what_rest_api_sends():
    gateway = ApiGateway(stage="dev", version="v1", binary_support=True, api_id="abc123defg")
    event = gateway.event_for(request("POST", body=b'{"a": 1}', headers=[("Content-Type", "application/json")]))
    assert event["path"] == "/api/members"
    assert event["requestContext"]["path"] == "/dev/api/members"
    assert event["requestContext"]["stage"] == "dev"
    assert event["headers"]["Host"] == "abc123defg.execute-api.us-east-1.amazonaws.com"
    assert event["headers"]["X-Forwarded-Proto"] == "https"
    assert event["multiValueQueryStringParameters"] == {"page": ["2"], "tag": ["a", "b"]}
    assert event["queryStringParameters"] == {"page": "2", "tag": "b"}
    assert event["pathParameters"] == {"proxy": "api/members"}
    assert event["requestContext"]["identity"]["sourceIp"] == "10.1.2.3"
    assert event["isBase64Encoded"] is True, "binary_support makes every body base64 (binaryMediaTypes */*)"
    assert gateway.event_for(request(target="/")) is None
    assert gateway.event_for(request(target="/development/x")) is None


def test_v2_event_is_what_http_api_sends():
    gateway = ApiGateway(stage="dev", version="v2", api_id="abc123defg")
    event = gateway.event_for(request("POST", body=b'{"a": 1}', headers=[("Content-Type", "application/json")]))
    assert event["version"] == "2.0"
    assert event["rawPath"] == "/dev/api/members"
    assert event["rawQueryString"] == "page=2&tag=a&tag=b"
    assert event["queryStringParameters"] == {"page": "2", "tag": "a,b"}
    assert event["cookies"] == ["csrftoken=abc", "sessionid=xyz"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["host"] == "abc123defg.execute-api.us-east-1.amazonaws.com"
    assert (event["body"], event["isBase64Encoded"]) == ('{"a": 1}', False)
    binary = gateway.event_for(request("POST", body=b"\x89PNG", headers=[("Content-Type", "image/png")]))
    assert binary["isBase64Encoded"] is True


def test_responses_become_http_as_api_gateway_makes_them():
    gateway = ApiGateway(stage="dev")
    v1 = gateway.response_from(
        {
            "statusCode": 201,
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "Content-Type": ["application/json"]},
            "headers": {"Content-Type": "application/json"},
            "body": "eyJvayI6IHRydWV9",
            "isBase64Encoded": True,
        }
    )
    assert v1.status == 201
    assert [v for k, v in v1.headers if k == "Set-Cookie"] == ["a=1", "b=2"]
    assert v1.body == b'{"ok": true}'
    v2 = gateway.response_from({"statusCode": 200, "headers": {"X-A": "1"}, "cookies": ["c=3"], "body": "hi"})
    assert ("Set-Cookie", "c=3") in v2.headers
    assert v2.body == b"hi"
    assert gateway.response_from({"no": "status"}).status == 502
    assert gateway.response_from(None).status == 502


# ------------------------------------------------------------------------------
# The command: serve_lambda runs `python -m tools.emulator` in a fresh process
# ------------------------------------------------------------------------------
def test_serve_lambda_hands_its_options_to_a_fresh_process(monkeypatch):
    handed = {}
    monkeypatch.setattr(os, "execv", lambda path, argv: handed.update(path=path, argv=argv))
    call_command(
        "serve_lambda", "production", "--port", "0", "--delay", "2", "--env", "A=1", "--no-schedules", "--migrate"
    )
    assert handed["path"] == sys.executable
    assert handed["argv"][1:3] == ["-m", "tools.emulator"]
    parser = cli.argparse.ArgumentParser()
    cli.add_arguments(parser)
    again = parser.parse_args(handed["argv"][3:])
    assert (again.stage, again.port, again.delay, again.env) == ("production", 0, 2.0, ["A=1"])
    assert again.no_schedules and again.migrate


def test_local_settings_go_to_remote_env_and_iot_becomes_mosquitto():
    parser = cli.argparse.ArgumentParser()
    cli.add_arguments(parser)
    environ = {"DATABASE_URL": "postgres://x/y", "MQTT_URL": "mqtt://127.0.0.1:1883", "HOME": "/root"}
    values, made_up = cli.remote_env_values(parser.parse_args(["dev"]), environ)
    assert set(values) == {"DATABASE_URL", "MQTT_URL", "DJANGO_SECRET_KEY", "CUE_FIELD_KEY"}
    assert made_up[0] == "DJANGO_SECRET_KEY (random, for this run)"
    assert made_up[1].startswith("CUE_FIELD_KEY (random, for this run")
    config = {"environment_variables": {"REALTIME_BACKEND": "iot"}}
    assert cli.env_overrides(parser.parse_args(["dev"]), config, values) == {"REALTIME_BACKEND": "mqtt"}
    chosen = parser.parse_args(["dev", "--env", "REALTIME_BACKEND=log"])
    assert cli.env_overrides(chosen, config, values) == {"REALTIME_BACKEND": "log"}
    assert cli.env_overrides(parser.parse_args(["dev"]), config, {}) == {}


def test_the_command_serves_a_stage_from_a_cold_start():
    """A real process: banner, /dev/healthz over HTTP, CloudWatch-style lines with the cold start's Init Duration."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the emulator process reaches the test database on PostgreSQL")
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SECRET_KEY": "emulator-test-secret-" + "x" * 40}
    env.pop("AWS_ENDPOINT_URL", None)  # the process starts its own moto server
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.emulator", "dev", "--port", "0", "--no-schedules"],
        cwd=Path(settings.BASE_DIR),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = []
        for line in process.stdout:
            banner.append(line)
            if line.startswith("  remote_env:"):
                break
        base = next(line.split()[3] for line in banner if line.startswith("  API Gateway v1:"))
        answer = requests.get(f"{base}healthz", timeout=60)
        assert answer.status_code == 200
        assert answer.json() == {"status": "ok", "database": "postgresql"}
        assert "DATABASE_URL" in banner[-1] and "DJANGO_SECRET_KEY" in banner[-1]
    finally:
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors[-2000:]
    report = next(line for line in errors.splitlines() if line.startswith("REPORT RequestId:"))
    assert "Init Duration" in report
