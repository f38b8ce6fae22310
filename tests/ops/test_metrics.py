"""project/metrics.py: Embedded Metric Format lines, written by Cue's own JSON logger."""

import json

import pytest
from django.conf import settings

from project import metrics


def test_the_body_is_an_emf_document_with_stage_and_the_given_dimensions(monkeypatch):
    monkeypatch.setenv("STAGE", "dev")
    body = metrics.metric_body(name="TaskDead", dimensions={"Task": "apps.x.tasks.y"})
    directive = body["_aws"]["CloudWatchMetrics"][0]
    assert isinstance(body["_aws"]["Timestamp"], int)
    assert directive == {
        "Namespace": "Cue",
        "Dimensions": [["Stage"], ["Stage", "Task"]],
        "Metrics": [{"Name": "TaskDead", "Unit": "Count"}],
    }
    # EMF reads every dimension and the value from the document's top level.
    assert body["Stage"] == "dev" and body["Task"] == "apps.x.tasks.y" and body["TaskDead"] == 1
    plain = metrics.metric_body(name="WebhookAckLatency", value=12.5, unit="Milliseconds")
    assert plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Stage"]]
    assert plain["WebhookAckLatency"] == 12.5


@pytest.mark.parametrize(
    "kwargs",
    [{"unit": "Furlongs"}, {"dimensions": {"Stage": "other"}}, {"dimensions": {"TaskDead": "x"}}],
)
def test_a_malformed_metric_is_refused(kwargs):
    with pytest.raises(ValueError):
        metrics.metric_body(name="TaskDead", **kwargs)


def test_each_metric_is_one_json_line_on_stdout_with_aws_at_its_top_level(monkeypatch, capsys):
    """The line CloudWatch Logs parses as EMF; a malformed metric is logged as an error, never raised."""
    monkeypatch.setenv("STAGE", "production")
    monkeypatch.setenv("CUE_METRICS", "1")
    metrics.metric_emit(name="RealtimePublishFailed", dimensions={"Backend": "iot"})
    metrics.metric_emit(name="Bad", unit="Furlongs")
    (line,) = capsys.readouterr().out.splitlines()
    body = json.loads(line)
    assert body["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "RealtimePublishFailed", "Unit": "Count"}]
    assert body["Stage"] == "production" and body["Backend"] == "iot" and body["RealtimePublishFailed"] == 1


def test_nothing_is_written_outside_lambda_unless_asked(monkeypatch, capsys):
    monkeypatch.delenv("CUE_METRICS", raising=False)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    metrics.metric_emit(name="TaskDead")
    assert capsys.readouterr().out == ""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "cue-dev")
    metrics.metric_emit(name="TaskDead")
    assert json.loads(capsys.readouterr().out)["TaskDead"] == 1


def test_every_alarm_on_cues_namespace_watches_a_metric_the_code_emits():
    """tools/stage_aws.py's alarms name metrics: each must be emitted somewhere under apps/ or project/."""
    from tools import stage_aws

    source = "".join(
        p.read_text() for folder in ("apps", "project") for p in (settings.BASE_DIR / folder).rglob("*.py")
    )
    for namespace, metric, *_ in stage_aws.ALARMS.values():
        if namespace == metrics.NAMESPACE:
            assert f'name="{metric}"' in source, metric
