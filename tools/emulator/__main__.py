"""`python -m tools.emulator STAGE`: serve a stage on this machine until interrupted (serve_lambda runs this)."""

import argparse
import json
import os
import re
import secrets
import signal
import sys
import threading
from pathlib import Path

from tools.emulator.stage import SETTINGS, StageEmulator, stage_config
from tools.local_aws import LocalAws, clean_aws_environment

# Cue's settings (README's table): on Lambda they come from the stage's remote_env, so here too.
LOCAL_SETTINGS = re.compile(r"^(DJANGO_\w+|CUE_\w+|JWT_\w+|CORS_\w+|INTERCOM_\w+|REALTIME_\w+|DATABASE_URL|MQTT_URL)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", nargs="?", default="dev", help="stage in the settings file (default: dev)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 for any free port")
    parser.add_argument("-s", "--settings-file", type=Path, default=SETTINGS, help="Zappa settings file")
    parser.add_argument("--event-version", choices=["v1", "v2"], help="API Gateway payload (default: the stage's)")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before SNS delivers a message")
    parser.add_argument("--duplicate-rate", type=float, default=0.0, help="share of messages delivered twice (0 to 1)")
    parser.add_argument("--concurrency", type=int, default=10, help="containers running at once")
    parser.add_argument("--no-schedules", action="store_true", help="do not fire the stage's scheduled jobs")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the stage's environment_variables (default: REALTIME_BACKEND=mqtt with MQTT_URL)",
    )
    parser.add_argument(
        "--remote-env", type=Path, help="JSON file for the stage's remote_env (default: Cue's settings from here)"
    )
    parser.add_argument("--migrate", action="store_true", help="run `migrate` in the function first (zappa manage)")


def remote_env_values(args, environ: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """What the stage's remote_env file holds here, and what was made up for it."""
    if args.remote_env:
        return json.loads(args.remote_env.read_text()), []
    values = {k: v for k, v in environ.items() if LOCAL_SETTINGS.match(k)}
    made_up = []
    if not values.get("DJANGO_SECRET_KEY"):
        values["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)
        made_up.append("DJANGO_SECRET_KEY (random, for this run)")
    if not values.get("CUE_FIELD_KEY"):
        from cryptography.fernet import Fernet

        values["CUE_FIELD_KEY"] = Fernet.generate_key().decode()
        made_up.append("CUE_FIELD_KEY (random, for this run: stored secrets do not survive it)")
    return values, made_up


def env_overrides(args, config: dict, remote_env: dict[str, str]) -> dict[str, str]:
    overrides = dict(item.split("=", 1) for item in args.env)
    declared = config.get("environment_variables", {})
    # IoT Core has no stand-in in moto that a browser can subscribe to; Mosquitto is one.
    if declared.get("REALTIME_BACKEND") == "iot" and remote_env.get("MQTT_URL") and "REALTIME_BACKEND" not in overrides:
        overrides["REALTIME_BACKEND"] = "mqtt"
    return overrides


def banner(emulator: StageEmulator, aws: LocalAws, remote_env: dict, made_up: list[str], overrides: dict) -> str:
    config = emulator.config
    lines = [
        f"Stage {emulator.stage} on this machine: function {emulator.function_name} "
        f"({config.get('runtime')}, {emulator.function.memory_mb} MB, {emulator.function.timeout_seconds} s)",
        f"  API Gateway {emulator.gateway.version}: {emulator.url}/  (as https://{emulator.gateway.domain}/{emulator.stage}/)",
        f"  AWS (moto):     {aws.url}",
    ]
    if emulator.deliverer:
        lines.append(
            f"  SNS:            {emulator.deliverer.topic_arn} -> function, delay {emulator.deliverer.delay:g} s, "
            f"duplicates {emulator.deliverer.duplicate_rate:.0%}"
        )
    if emulator.scheduler:
        for name, when in emulator.scheduler.next_fires().items():
            lines.append(f"  schedule:       {name} " + (f"next {when:%H:%M:%S}Z" if when else "never"))
    if config.get("remote_env"):
        lines.append(f"  remote_env:     {config['remote_env']} <- {', '.join(sorted(remote_env)) or 'nothing'}")
    for item in made_up:
        lines.append(f"  made up:        {item}")
    declared = config.get("environment_variables", {})
    for key, value in overrides.items():
        lines.append(f"  not as on AWS:  {key}={value} (the stage says {declared.get(key)!r})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="manage.py serve_lambda", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    config = stage_config(args.stage, args.settings_file)
    remote_env, made_up = remote_env_values(args, dict(os.environ))
    overrides = env_overrides(args, config, remote_env)
    # As in a Lambda container, Cue's settings reach the function only through remote_env.
    for key in list(os.environ):
        if LOCAL_SETTINGS.match(key):
            del os.environ[key]
    aws = LocalAws(config.get("aws_region", "us-east-1")).start()
    clean = clean_aws_environment(dict(os.environ))
    os.environ.clear()
    os.environ.update({**clean, **aws.env()})  # before anything makes a boto3 client (zappa.asynchronous does)
    emulator = StageEmulator(
        args.stage,
        aws=aws,
        settings_path=args.settings_file,
        host=args.host,
        port=args.port,
        event_version=args.event_version,
        delay=args.delay,
        duplicate_rate=args.duplicate_rate,
        schedules=not args.no_schedules,
        env_overrides=overrides,
        remote_env=remote_env,
        concurrency=args.concurrency,
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        emulator.start()
        print(banner(emulator, aws, remote_env, made_up, overrides), flush=True)
        if args.migrate:
            emulator.invoke_command("migrate")
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        aws.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
