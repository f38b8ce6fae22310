"""Drives the real Zappa lambda_handler in-process with the settings module Zappa generates for a stage."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from tests.support.events import LambdaContext

ZAPPA = str(Path(sys.executable).parent / "zappa")


def write_stage_settings(stage: str, out_dir: Path, settings_file: Path | None = None) -> Path:
    """Run `zappa save-python-settings-file STAGE` into out_dir; returns the zappa_settings.py path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "zappa_settings.py"
    cmd = [ZAPPA, "save-python-settings-file", stage, "-o", str(target), "-q"]
    if settings_file:
        cmd += ["-s", str(settings_file)]
    subprocess.run(cmd, check=True, cwd=settings.BASE_DIR, capture_output=True, text=True)
    return target


def stage_settings_values(settings_py: Path) -> dict:
    values: dict = {}
    exec(compile(settings_py.read_text(), str(settings_py), "exec"), values)  # noqa: S102 - Zappa's own output
    return values


class Handler:
    """A fresh Zappa LambdaHandler (the singleton reset) loaded from a stage's generated settings."""

    def __init__(self, settings_dir: Path, function_name: str):
        self.settings_dir = settings_dir
        self.function_name = function_name
        self._saved_env = dict(os.environ)

    def __enter__(self) -> "Handler":
        from zappa.handler import LambdaHandler

        sys.modules.pop("zappa_settings", None)
        sys.path.insert(0, str(self.settings_dir))
        LambdaHandler._LambdaHandler__instance = None
        LambdaHandler.settings = None
        return self

    def __exit__(self, *exc) -> None:
        from zappa.handler import LambdaHandler

        LambdaHandler._LambdaHandler__instance = None
        LambdaHandler.settings = None
        sys.modules.pop("zappa_settings", None)
        if str(self.settings_dir) in sys.path:
            sys.path.remove(str(self.settings_dir))
        # The handler writes its stage's environment into os.environ; give the rest of the suite its own back.
        os.environ.clear()
        os.environ.update(self._saved_env)

    def context(self, **kwargs) -> LambdaContext:
        return LambdaContext(function_name=self.function_name, **kwargs)

    def __call__(self, event: dict, context: LambdaContext | None = None):
        from zappa.handler import lambda_handler

        return lambda_handler(event, context or self.context())
