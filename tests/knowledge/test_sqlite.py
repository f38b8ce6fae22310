"""The embedded default: on a real SQLite database the same ranking interface works, feedback included."""

import json
import os
import subprocess
import sys

from django.conf import settings

SCRIPT = """
import json
import django
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from apps.accounts.models import Workspace
from apps.knowledge.selectors import entries_rank
from apps.knowledge.services import entry_create, evidence_record
ws = Workspace.objects.create(name="laptop").id
password = entry_create(workspace_id=ws, title="Reset your password", body="<p>Click <b>Forgot password</b>.</p>")
refunds = entry_create(workspace_id=ws, title="Refunds", body="We refund orders within 30 days.")
def ranked(text):
    return [[r.title, r.score, r.rank] for r in entries_rank(workspace_id=ws, text=text, limit=5, threshold=0)]
first = ranked("<p>I forgot my pasword</p>")
before = ranked("parcel lost, I want my money")
for n, text in enumerate(["my parcel is lost, money please", "lost parcel, where is my money"]):
    evidence_record(workspace_id=ws, entry_id=refunds.id, message_ref=str(n), text=text, action="accept")
after = ranked("parcel lost, I want my money")
print(json.dumps({"vendor": connection.vendor, "first": first, "before": before, "after": after,
                  "empty": ranked(""), "foreign": ranked("\u5982\u4f55\u91cd\u7f6e\u5bc6\u7801")}))
"""


def test_sqlite_ranks_through_the_pure_python_index(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env |= {"DATABASE_URL": f"sqlite:///{tmp_path / 'cue.sqlite3'}", "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env["LOG_LEVEL"] = "WARNING"
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=settings.BASE_DIR, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["vendor"] == "sqlite"
    assert out["first"][0][0] == "Reset your password"
    assert 0 < out["first"][0][1] <= 1 and out["first"][0][2] == 1
    assert not out["before"] or out["before"][0][0] != "Refunds"
    assert out["after"][0][0] == "Refunds"
    assert out["empty"] == []
    assert isinstance(out["foreign"], list)
