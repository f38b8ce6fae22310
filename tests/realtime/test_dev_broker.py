"""bin/dev's broker (tools.dev_broker): a Mosquitto beside the command, the settings pointed at it, gone after.

The command here is a small Python program standing in for `manage.py runserver`: it loads Cue's
settings from the environment it was given, listens over MQTT-over-WebSockets as a browser does (paho's
websockets transport), publishes an event with Cue's own realtime service, and reports what it saw.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tools import dev_broker

REPO = Path(settings.BASE_DIR)

BROWSER_AND_SERVER = """
import json, os, sys
import django
os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
os.environ.setdefault("DJANGO_DEBUG", "1")
django.setup()
from django.conf import settings
from apps.realtime import services, topics
from tests.support.mqtt import Subscriber

report = {k: os.environ.get(k) for k in ("REALTIME_BACKEND", "MQTT_URL", "REALTIME_WS_URL")}
report["settings"] = [settings.REALTIME_BACKEND, settings.MQTT_URL, settings.REALTIME_WS_URL]
if settings.REALTIME_BACKEND == "mqtt":
    url = services._websocket_url()  # what GET /api/realtime/connection hands the browser
    with Subscriber(url, topics.subscribe_filters(workspace_id=1, user_id=1), transport="websockets") as browser:
        receipt = services.event_publish(
            workspace_id=1, topic_suffix="conversations", payload_type="conversation", data={"n": 1}
        )
        got = browser.wait_for(lambda m: True)
    report["browser_url"] = url
    report["received"] = [got.topic, got.payload["event_id"] == receipt["event_id"]]
with open(sys.argv[1], "w") as out:
    json.dump(report, out)
"""


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def program(tmp_path) -> list[str]:
    script = tmp_path / "server.py"
    script.write_text(BROWSER_AND_SERVER)
    return [sys.executable, str(script), str(tmp_path / "report.json")]


@pytest.fixture
def dev_env(monkeypatch):
    """bin/dev's environment: no realtime settings of its own, the checkout importable."""
    for name in ("REALTIME_BACKEND", "MQTT_URL", "REALTIME_WS_URL", "REALTIME_TOPIC_ROOT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("DJANGO_DEBUG", "1")


def test_a_browser_hears_cue_over_websockets_and_the_broker_is_gone_after(dev_env, program, tmp_path, capfd):
    assert dev_broker.run_with_broker(program) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["REALTIME_BACKEND"] == "mqtt"
    assert report["settings"] == [report["REALTIME_BACKEND"], report["MQTT_URL"], report["REALTIME_WS_URL"]]
    assert report["browser_url"] == report["REALTIME_WS_URL"]
    assert report["browser_url"].startswith("ws://127.0.0.1:")
    assert report["received"] == ["cue/1/conversations", True]
    ports = [int(report[k].rsplit(":", 1)[1]) for k in ("MQTT_URL", "REALTIME_WS_URL")]
    assert not any(accepts(port) for port in ports), "the broker stopped with the command"
    assert f"live realtime: Mosquitto on {report['MQTT_URL']}" in capfd.readouterr().err


def test_realtime_settings_given_by_the_developer_win(dev_env, program, tmp_path, monkeypatch):
    monkeypatch.setenv("REALTIME_BACKEND", "log")
    assert dev_broker.run_with_broker(program) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["REALTIME_BACKEND"], report["MQTT_URL"], report["settings"][0]) == ("log", None, "log")


def test_without_mosquitto_the_command_runs_with_realtime_off(dev_env, program, tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(dev_broker, "mosquitto_binary", lambda: None)
    assert dev_broker.run_with_broker(program) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["REALTIME_BACKEND"], report["settings"][0]) == (None, "log"), "log: the console polls"
    assert "realtime is off, the console polls instead: no mosquitto" in capfd.readouterr().err


def test_the_commands_exit_code_is_bin_devs(dev_env):
    assert dev_broker.run_with_broker([sys.executable, "-c", "raise SystemExit(3)"]) == 3


@pytest.fixture
def launch(tmp_path):
    """launch() -> (launcher, server pid, broker ports): `python -m tools.dev_broker -- <a long-running server>`.

    Whatever a failing test leaves running is killed at teardown.
    """
    started: list[int] = []

    def start() -> tuple[subprocess.Popen, int, list[int]]:
        pid_file = tmp_path / "server.pid"
        server = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
        launcher = subprocess.Popen(
            [sys.executable, "-m", "tools.dev_broker", "--", sys.executable, "-c", server],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(launcher.pid)
        line = launcher.stderr.readline()
        assert "live realtime" in line, line
        ports = [int(p.rsplit(":", 1)[1].rstrip(",\n")) for p in line.split() if p.startswith(("mqtt:", "ws:"))]
        while not pid_file.exists() or not pid_file.read_text():
            assert launcher.poll() is None, "the launcher ended early"
            time.sleep(0.02)
        started.append(int(pid_file.read_text()))
        return launcher, started[-1], ports

    yield start
    for pid in started:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_the_server_then_the_broker(dev_env, launch):
    launcher, server_pid, ports = launch()
    assert len(ports) == 2 and all(accepts(p) for p in ports)
    launcher.send_signal(signal.SIGINT)  # passed on to the server, which ends; then the broker is stopped
    assert launcher.wait(10) != 0
    assert not any(accepts(p) for p in ports)
    with pytest.raises(ProcessLookupError):
        os.kill(server_pid, 0)


def test_a_killed_launcher_takes_its_broker_with_it(dev_env, launch):
    """SIGKILL leaves no cleanup to run: the broker was started to receive SIGTERM when its parent dies.

    (The stand-in server is orphaned, as runserver would be; the fixture kills it.)
    """
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    launcher, _, ports = launch()
    launcher.kill()
    launcher.wait(10)
    assert _wait_until(lambda: not any(accepts(p) for p in ports)), "the broker outlived bin/dev"
