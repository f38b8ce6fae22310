"""Cue's development tooling as a Django app, so its management commands (serve_lambda) are found.

project/settings.py installs it only off Lambda and only where tools/ exists: the Lambda zip never holds it.
"""

from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "tools"
    verbose_name = "Cue tooling (not deployed)"
