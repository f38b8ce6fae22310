"""Realtime settings fail at start when they cannot work."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

SHOW = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.REALTIME_BACKEND, s.REALTIME_TOPIC_ROOT, s.REALTIME_IOT_AUTHORIZER)"
)


def start(env: dict) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REALTIME_", "MQTT_")) and k != "STAGE"}
    return subprocess.run(
        [sys.executable, "-c", SHOW],
        env={**clean, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
    )


def test_default_is_the_log_backend_on_the_contract_root():
    result = start({})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["log", "cue", "cue-realtime"]


@pytest.mark.parametrize(
    "stage, root, authorizer",
    [("production", "cue", "cue-realtime-production"), ("staging", "cue-staging", "cue-realtime-staging")],
)
def test_each_stage_but_production_gets_a_topic_root_of_its_own(stage, root, authorizer):
    """Stages share the account's IoT topic space and all have a workspace 1."""
    result = start({"STAGE": stage})
    assert result.stdout.split() == ["log", root, authorizer], result.stderr
    assert start({"STAGE": stage, "REALTIME_TOPIC_ROOT": "mine"}).stdout.split()[1] == "mine"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"REALTIME_BACKEND": "kafka"}, "REALTIME_BACKEND must be iot, mqtt or log"),
        ({"REALTIME_BACKEND": "mqtt"}, "REALTIME_BACKEND=mqtt needs MQTT_URL"),
        ({"REALTIME_TOPIC_ROOT": "cue/prod"}, "REALTIME_TOPIC_ROOT must be"),
        ({"REALTIME_TOPIC_ROOT": "#"}, "REALTIME_TOPIC_ROOT must be"),
        ({"REALTIME_POLL_SECONDS": "0"}, "REALTIME_POLL_SECONDS must be a whole number of seconds, 1 to 3600"),
        ({"REALTIME_POLL_SECONDS": "3601"}, "REALTIME_POLL_SECONDS must be"),
        ({"REALTIME_POLL_SECONDS": "fast"}, "REALTIME_POLL_SECONDS must be"),
    ],
)
def test_unworkable_settings_refuse_to_start(env, message):
    result = start(env)
    assert result.returncode != 0
    assert message in result.stderr
