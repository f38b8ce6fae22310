"""One stage on this machine: API Gateway, the function, its SNS deliveries and its schedules, on moto's server."""

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tools import stages as stage_files
from tools.emulator.apigateway import ApiGateway, GatewayServer
from tools.emulator.function import StageFunction, stderr_log
from tools.emulator.scheduler import Scheduler, Timeline
from tools.emulator.sns import ASYNC_RETRY_DELAYS, SnsDeliverer
from tools.local_aws import LocalAws, OutsideGuard, clean_aws_environment
from tools.schedules import stage_rules

ROOT = Path(__file__).resolve().parent.parent.parent
SETTINGS = ROOT / "zappa_settings.json"


def stage_config(stage: str, settings_path: Path = SETTINGS) -> dict:
    return stage_files.resolved(json.loads(settings_path.read_text()), stage)


def write_settings_module(
    stage: str, out_dir: Path, *, settings_path: Path = SETTINGS, env_overrides: dict | None = None
) -> Path:
    """The `zappa_settings.py` Zappa packages for the stage (`zappa save-python-settings-file`), into out_dir.

    `env_overrides` change the stage's environment_variables in a generated overlay (never in the
    committed settings): Zappa's handler sets those after loading remote_env, so only this way can a
    local stand-in (Mosquitto for IoT Core) replace what the stage names.
    """
    source = settings_path
    if env_overrides:
        config = stage_config(stage, settings_path)
        environment = {**config.get("environment_variables", {}), **env_overrides}
        source = stage_files.write_overlay(settings_path, stage, {"environment_variables": environment}, out_dir)
    target = out_dir / "zappa_settings.py"
    zappa = Path(sys.executable).parent / "zappa"
    with OutsideGuard() as guard:  # Zappa asks PyPI for a newer version of itself first: refused
        env = {**clean_aws_environment(dict(os.environ)), **guard.env()}
        subprocess.run(  # noqa: S603 - our own virtualenv's zappa
            [str(zappa), "save-python-settings-file", stage, "-o", str(target), "-s", str(source), "-q"],
            check=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
    return target


class StageEmulator:
    """Serves the stage at http://host:port/<stage>/ until stopped; every AWS call goes to `aws` (moto)."""

    def __init__(
        self,
        stage: str,
        *,
        aws: LocalAws,
        settings_path: Path = SETTINGS,
        settings_dir: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        event_version: str | None = None,
        delay: float = 0.0,
        duplicate_rate: float = 0.0,
        schedules: bool = True,
        env_overrides: dict | None = None,
        remote_env: dict | None = None,
        concurrency: int = 10,
        retry_delays: tuple[float, ...] = ASYNC_RETRY_DELAYS,
        log=stderr_log,
    ):
        self.stage = stage
        self.aws = aws
        self.config = stage_config(stage, settings_path)
        self.function_name = stage_files.function_name(self.config, stage)
        self.settings_path = settings_path
        self.settings_dir = settings_dir
        self.env_overrides = env_overrides or {}
        self.remote_env = remote_env
        self.log = log
        self.timeline = Timeline()
        self.function = StageFunction(
            name=self.function_name,
            handler_path=self.config.get("lambda_handler", "handler.lambda_handler"),
            settings_dir=Path("."),  # set in start(), once the settings module exists
            memory_mb=self.config.get("memory_size", 512),
            timeout_seconds=self.config.get("timeout_seconds", 30),
            region=self.config.get("aws_region", "us-east-1"),
            environment=self.config.get("aws_environment_variables") or {},
            concurrency=concurrency,
            log=log,
        )
        self.gateway = ApiGateway(
            stage=stage,
            version=event_version or self.config.get("apigateway_version", "v1"),
            binary_support=self.config.get("binary_support", True),
            region=self.function.region,
        )
        self._host, self._port = host, port
        self.server: GatewayServer | None = None
        self.deliverer: SnsDeliverer | None = None
        if self.config.get("async_source") == "sns":
            self.deliverer = SnsDeliverer(
                aws=aws,
                function=self.function,
                timeline=self.timeline,
                delay=delay,
                duplicate_rate=duplicate_rate,
                retry_delays=retry_delays,
            )
        self.scheduler = None
        if schedules:
            rules = stage_rules(self.config, self.function_name)
            self.scheduler = Scheduler(rules=rules, function=self.function, timeline=self.timeline)
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.port}/{self.stage}"

    def start(self) -> "StageEmulator":
        if self.settings_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"emulator-{self.stage}-")
            write_settings_module(
                self.stage, Path(self._tmp.name), settings_path=self.settings_path, env_overrides=self.env_overrides
            )
            self.settings_dir = Path(self._tmp.name)
        self.function.settings_dir = self.settings_dir
        if self.remote_env is not None and self.config.get("remote_env"):
            self.aws.put_remote_env(self.config["remote_env"], self.remote_env)
        self.function.start()
        self.timeline.start()
        if self.deliverer:
            self.deliverer.setup().start()
        if self.scheduler:
            self.scheduler.start()
        self.server = GatewayServer(self.gateway, self.function, self._host, self._port).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.stop()
        if self.scheduler:
            self.scheduler.stop()
        if self.deliverer:
            self.deliverer.stop()
        self.timeline.stop()
        self.function.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> "StageEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def advance(self, delta: timedelta) -> int:
        """Fast-forward the emulator's clock: rules and delayed deliveries due by then run now."""
        return self.timeline.advance(delta)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Until no invocation runs and every published message has been delivered: True if so in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # The function first: a running invocation may still publish a message.
            if self.function.running == 0 and (self.deliverer is None or self.deliverer.is_idle()):
                return True
            time.sleep(0.02)
        return False

    def invoke_command(self, command: str):
        """What `zappa manage STAGE <command>` sends: a management command run inside the function."""
        return self.function.invoke({"manage": command}, f"zappa manage {self.stage} {command}")
