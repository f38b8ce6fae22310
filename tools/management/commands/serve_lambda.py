"""Serve a stage on this machine: API Gateway, the stage's Lambda entry point, SNS deliveries, schedules."""

import os
import sys

from django.core.management.base import BaseCommand

from tools.emulator.__main__ import add_arguments


def emulator_argv(options: dict) -> list[str]:
    """The options as `python -m tools.emulator` takes them."""
    argv = [options["stage"], "--host", options["host"], "--port", str(options["port"])]
    argv += ["-s", str(options["settings_file"]), "--delay", str(options["delay"])]
    argv += ["--duplicate-rate", str(options["duplicate_rate"]), "--concurrency", str(options["concurrency"])]
    if options["event_version"]:
        argv += ["--event-version", options["event_version"]]
    if options["remote_env"]:
        argv += ["--remote-env", str(options["remote_env"])]
    for item in options["env"]:
        argv += ["--env", item]
    if options["no_schedules"]:
        argv.append("--no-schedules")
    if options["migrate"]:
        argv.append("--migrate")
    return argv


class Command(BaseCommand):
    help = (
        "Serve a stage as Lambda would run it: HTTP at /<stage>/ as API Gateway events to the stage's "
        "lambda_handler, tasks through SNS (moto) and back, scheduled jobs on their expressions."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        # A fresh process: here Django is already set up from this shell's environment, whereas in a
        # Lambda container the stage's handler sets it up after loading remote_env (and the cold start shows it).
        command = [sys.executable, "-m", "tools.emulator", *emulator_argv(options)]
        sys.stdout.flush()
        os.execv(sys.executable, command)  # noqa: S606 - this Python, our own module
