"""zappa_settings.json: every stage, after `extends`, declares jobs that exist, on valid schedules, each tested."""

import json
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

from tools.schedules import InvalidSchedule, validate_expression
from tools.stages import resolved

SETTINGS = json.loads((Path(settings.BASE_DIR) / "zappa_settings.json").read_text())
STAGES = sorted(SETTINGS)
TESTS_TEXT = "\n".join(p.read_text() for p in (Path(settings.BASE_DIR) / "tests").rglob("test_*.py"))


def jobs() -> set[str]:
    return {event["function"] for stage in STAGES for event in resolved(SETTINGS, stage).get("events", [])}


@pytest.mark.parametrize("stage", STAGES)
def test_every_event_imports_and_is_callable_with_a_valid_schedule(stage):
    config = resolved(SETTINGS, stage)
    assert config["runtime"] == "python3.11"
    assert config["django_settings"] == "project.settings"
    assert config["async_source"] == "sns"
    assert import_string(config["lambda_handler"])
    for event in config.get("events", []):
        function = import_string(event["function"])
        assert callable(function), event
        validate_expression(event["expression"])
        assert re.fullmatch(r"[._A-Za-z0-9]{1,63}", event["function"]), "Zappa's rule-name pattern"


@pytest.mark.parametrize("stage", STAGES)
def test_no_secret_in_environment_variables(stage):
    env = resolved(SETTINGS, stage).get("environment_variables", {})
    secretish = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|_KEY$", re.IGNORECASE)
    assert not [k for k in env if secretish.search(k)], "secrets belong in remote_env, never in the zip"


def test_stage_policies():
    """Debug and keep-warm only where they belong; production and staging log at INFO."""
    assert resolved(SETTINGS, "dev")["keep_warm"] is False
    for stage in ("staging", "production"):
        config = resolved(SETTINGS, stage)
        assert config["debug"] is False
        assert config["log_level"] == "INFO"
        assert config["keep_warm"] is True
        assert config["remote_env"].startswith(f"s3://cue-config-{stage}/")


@pytest.mark.parametrize("job", sorted(jobs()))
def test_every_job_has_a_test(job):
    """A job named in events is exercised by some test that names its dotted path."""
    mentions = TESTS_TEXT.count(job) - TESTS_TEXT.count(f"# not a test of {job}")
    assert mentions > 0, f"no test names {job}"


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minute)",
        "rate(5 minutes)",
        "rate(1 day)",
        "cron(0 6 * * ? *)",
        "cron(15 10 ? * MON-FRI *)",
        "cron(0/5 8-17 ? * 2-6 *)",
        "cron(0 0 L * ? 2027)",
    ],
)
def test_valid_expressions(expression):
    assert validate_expression(expression) == expression


@pytest.mark.parametrize(
    "expression",
    [
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(0 minutes)",
        "rate(5 weeks)",
        "every 5 minutes",
        "cron(0 6 * * *)",
        "cron(0 6 * * * *)",
        "cron(0 6 ? * ? *)",
        "cron(61 6 * * ? *)",
        "cron(0 25 * * ? *)",
        "cron(0 6 * 13 ? *)",
    ],
)
def test_invalid_expressions(expression):
    with pytest.raises(InvalidSchedule):
        validate_expression(expression)
