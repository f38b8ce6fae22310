"""A local MQTT broker for `bin/dev`: Mosquitto from this machine, TCP and WebSockets on free loopback ports.

    python -m tools.dev_broker -- python manage.py runserver 8000

starts a private Mosquitto, runs the command with the realtime settings pointing at it
(REALTIME_BACKEND=mqtt, MQTT_URL, REALTIME_WS_URL), and stops the broker when the command ends (or
when this process is killed: the broker gets SIGTERM with its parent on Linux). Where the machine has
no `mosquitto`, or REALTIME_BACKEND is already set, the command runs with the environment as it is:
the `log` backend then means realtime is off, and the console polls (docs/realtime.md).

Why Mosquitto and not a broker in a Python package: it is the broker the tests and docs/realtime.md
use, one small C binary in every Linux distribution and Homebrew, with WebSockets built in; a Python
broker (amqtt) would ship in the Lambda package (`bin/dev` installs requirements.txt only) or need a
second requirements file, and would behave unlike the broker every test runs against.
"""

import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Where package managers put it when it is not on PATH (Debian's sbin, Homebrew on Apple silicon and Intel).
_KNOWN_PATHS = ("/usr/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto", "/usr/local/sbin/mosquitto")
_START_SECONDS = 5.0


class BrokerUnavailable(RuntimeError):
    """No mosquitto binary here, or it would not start."""


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((path for path in _KNOWN_PATHS if os.access(path, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux), so a killed bin/dev leaves no broker."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Mosquitto:
    """A private, open (anonymous) broker on loopback: a TCP and a WebSockets listener, stopped and started
    again on the same ports (the realtime tests use that for outages)."""

    def __init__(self, workdir: Path, *, binary: str | None = None):
        binary = binary or mosquitto_binary()
        if not binary:
            raise BrokerUnavailable(
                "no mosquitto binary on this machine (apt install mosquitto / brew install mosquitto)"
            )
        self.binary = binary
        self.config = Path(workdir) / "mosquitto.conf"
        self.log = Path(workdir) / "mosquitto.log"  # its start-up complaints (a taken port, a bad option)
        self._choose_ports()
        self._process: subprocess.Popen | None = None
        self._started_once = False

    def _choose_ports(self) -> None:
        self.port, self.ws_port = free_port(), free_port()
        # `user`: as root, Mosquitto would switch to its own user, and a credential change clears the
        # parent-death signal (_die_with_parent); as anyone else it never switches, so this changes nothing.
        self.config.write_text(
            f"user {getpass.getuser()}\npersistence false\nlog_dest none\n"
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"listener {self.ws_port} 127.0.0.1\nprotocol websockets\n"
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def settings_env(self) -> dict[str, str]:
        """The realtime settings that point Cue at this broker."""
        return {"REALTIME_BACKEND": "mqtt", "MQTT_URL": self.url, "REALTIME_WS_URL": self.ws_url}

    def start(self) -> "Mosquitto":
        """Start and wait until both listeners accept; a first start whose free port was taken meanwhile retries."""
        for _ in range(1 if self._started_once else 3):
            if self._start_once():
                self._started_once = True
                return self
            if not self._started_once:
                self._choose_ports()
        said = self.log.read_text(errors="replace").strip().splitlines()[-3:] if self.log.exists() else []
        raise BrokerUnavailable(
            f"mosquitto did not start on 127.0.0.1:{self.port} and {self.ws_port}: {' / '.join(said) or 'no output'}"
        )

    def _start_once(self) -> bool:
        with self.log.open("ab") as log:
            self._process = self._spawn(log)
        return self._wait_for_listeners()

    def _spawn(self, log) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - our own config, a binary found on this machine
            [self.binary, "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # Ctrl-C reaches the server, not the broker: it is stopped after the server
            preexec_fn=_die_with_parent,  # only prctl: safe before exec even with threads
        )

    def _wait_for_listeners(self) -> bool:
        deadline = time.monotonic() + _START_SECONDS
        waiting = [self.port, self.ws_port]
        while waiting and time.monotonic() < deadline:
            if self._process.poll() is not None:  # exited: most likely a port someone else bound first
                self._process = None
                return False
            try:
                with socket.create_connection(("127.0.0.1", waiting[0]), timeout=0.2):
                    waiting.pop(0)
            except OSError:
                time.sleep(0.02)
        if waiting:
            self.stop()
            return False
        return True

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
            self._process = None


def _say(text: str) -> None:
    print(f"bin/dev: {text}", file=sys.stderr, flush=True)


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run the command to its end; SIGINT/SIGTERM sent here are passed on, and the command's own code returned."""
    child = subprocess.Popen(command, env=env)  # noqa: S603 - the developer's own command line

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def run_with_broker(command: list[str], *, environ: dict[str, str] | None = None) -> int:
    """Run `command` beside a private broker (see the module's docstring); returns the command's exit code."""
    env = dict(os.environ if environ is None else environ)
    if env.get("REALTIME_BACKEND", "").strip():
        _say(f"REALTIME_BACKEND={env['REALTIME_BACKEND']} is set: no local broker started")
        return _run(command, env)
    with tempfile.TemporaryDirectory(prefix="cue-dev-broker-") as workdir:
        try:
            broker = Mosquitto(Path(workdir)).start()
        except BrokerUnavailable as exc:
            _say(f"realtime is off, the console polls instead: {exc}")
            return _run(command, env)
        try:
            env.update(broker.settings_env())
            _say(f"live realtime: Mosquitto on {broker.url}, browsers on {broker.ws_url}")
            return _run(command, env)
        finally:
            broker.stop()


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m tools.dev_broker -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    return run_with_broker(args)


if __name__ == "__main__":
    sys.exit(main())
