"""The webhook's metrics (project/metrics.py): one ack count by outcome and its latency per request."""

import json

import pytest

from tests.integrations.intercom_payloads import Conversation


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch):
    monkeypatch.setenv("CUE_METRICS", "1")


def emitted(capsys) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    return [{k: v for k, v in line.items() if k not in ("_aws", "Stage")} for line in lines]


def test_an_accepted_webhook_counts_as_accepted_with_its_latency(connection, post_webhook, capsys):
    capsys.readouterr()
    assert post_webhook(Conversation(1).user_created()).status_code == 200
    lines = emitted(capsys)
    assert {"WebhookAck": 1, "Outcome": "accepted"} in lines
    (latency,) = [line["WebhookAckLatency"] for line in lines if "WebhookAckLatency" in line]
    assert latency > 0
    assert not [line for line in lines if "WebhookServerError" in line]


def test_a_refusal_counts_by_its_reason(connection, post_webhook, capsys):
    capsys.readouterr()
    assert post_webhook(Conversation(1).user_created(), signature="sha1=" + "0" * 40).status_code == 401
    assert {"WebhookAck": 1, "Outcome": "signature_invalid"} in emitted(capsys)
