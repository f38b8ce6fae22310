"""Ask Intercom whether each connection's token still proves its app; disable those whose token does not."""

import json

from django.core.management.base import BaseCommand

from apps.integrations.services import connections_verify


class Command(BaseCommand):
    help = (
        "Verify Intercom connections with GET /me: a token Intercom refuses (401) or that belongs to another app "
        "disables its connection (with a reason its owner reads); a passing Intercom error leaves it for the next run. "
        "By default only connections never verified (stored before ownership was proven)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="also connections already verified")
        parser.add_argument("--limit", type=int, default=1000, help="at most this many connections (default 1000)")

    def handle(self, *args, all: bool, limit: int, **options):  # noqa: A002 - the flag's name
        counts = connections_verify(include_verified=all, limit=limit)
        self.stdout.write(json.dumps(counts))
