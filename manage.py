#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    # `manage.py test` hands over to pytest with the test settings (fast hasher, locmem email).
    default_settings = "tests.settings" if sys.argv[1:2] == ["test"] else "project.settings"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", default_settings)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
