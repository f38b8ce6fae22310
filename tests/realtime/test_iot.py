"""The iot backend at the boto3 boundary, against moto's server: topic, QoS 1, payload, endpoint discovery."""

import json
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto.iotdata.models import iotdata_backends

from apps.realtime import services
from apps.realtime.backends import IotBackend, PublishFailed, get_backend
from apps.realtime.tokens import realtime_token_verify
from tests.realtime import sources
from tests.support.events import ACCOUNT, REGION


@pytest.fixture
def iot_backend(settings, moto_server, topic_root) -> IotBackend:
    moto_server.reset()
    settings.REALTIME_BACKEND = "iot"
    settings.REALTIME_IOT_ENDPOINT = ""
    backend = get_backend()
    assert isinstance(backend, IotBackend)
    return backend


@pytest.fixture
def aws_calls():
    """Every AWS operation boto3 clients made from now on send: (service, operation, prepared request)."""
    calls: list[tuple[str, str, object]] = []

    def record(request, event_name, **kwargs):
        _, service, operation = event_name.split(".")
        calls.append((service, operation, request))

    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-send", record)
    yield calls
    boto3.DEFAULT_SESSION = None


def published_to_moto() -> list[tuple[str, bytes]]:
    return list(iotdata_backends[ACCOUNT][REGION].published_payloads)


def test_publish_sends_topic_qos1_and_payload(iot_backend, aws_calls, topic_root):
    """What crosses the boto3 boundary: POST /topics/<topic>?qos=1 with the JSON payload; moto keeps it."""
    receipt = services.suggestions_publish(
        workspace_id=3, conversation_id=42, message_id=9, suggestions=sources.sample_suggestions("Acme")
    )
    [(service, operation, request)] = [c for c in aws_calls if c[1] == "Publish"]
    assert service == "iot-data-plane"
    url = urlsplit(request.url)
    assert unquote(url.path) == f"/topics/{topic_root}/3/conversations/42/suggestions"
    assert parse_qs(url.query)["qos"] == ["1"]
    payload = json.loads(request.body)
    assert payload["type"] == "suggestions"
    assert payload["event_id"] == receipt["event_id"]
    assert payload["suggestions"] == sources.sample_suggestions("Acme")

    [(topic, body)] = published_to_moto()
    assert topic == receipt["topic"] == f"{topic_root}/3/conversations/42/suggestions"
    assert json.loads(body) == payload
    assert receipt["backend"] == "iot"


def test_endpoint_is_discovered_once_per_process(iot_backend, aws_calls):
    """DescribeEndpoint(iot:Data-ATS) on the first publish only; later publishes reuse the client."""
    for message_id in (1, 2, 3):
        services.suggestions_publish(
            workspace_id=1, conversation_id=1, message_id=message_id, suggestions=sources.sample_suggestions("A")
        )
    discoveries = [c for c in aws_calls if c[1] == "DescribeEndpoint"]
    assert len(discoveries) == 1
    assert parse_qs(urlsplit(discoveries[0][2].url).query) == {"endpointType": ["iot:Data-ATS"]}
    assert len(published_to_moto()) == 3
    assert iot_backend.data_endpoint().endswith("-ats.iot.us-east-1.amazonaws.com")


def test_publishes_go_to_the_discovered_endpoint_outside_an_emulator(iot_backend, monkeypatch):
    """Without AWS_ENDPOINT_URL (as in Lambda) the data client points at https://<ATS endpoint>."""
    discovered = iot_backend.data_endpoint()  # through moto
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    fresh = IotBackend(endpoint=discovered, region=REGION, timeout=1)
    assert fresh.data_client().meta.endpoint_url == f"https://{discovered}"  # made, never called


def test_a_configured_endpoint_is_used_without_discovery(settings, aws_calls, monkeypatch):
    settings.REALTIME_BACKEND = "iot"
    settings.REALTIME_IOT_ENDPOINT = "https://abc123-ats.iot.eu-west-1.amazonaws.com/"
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    backend = get_backend()
    assert backend.data_endpoint() == "abc123-ats.iot.eu-west-1.amazonaws.com"
    assert backend.data_client().meta.endpoint_url == "https://abc123-ats.iot.eu-west-1.amazonaws.com"
    assert aws_calls == []


class _Raw:
    def __init__(self, body: bytes):
        self.body = body

    def stream(self, *args, **kwargs):
        yield self.body


def test_a_refused_publish_raises_publish_failed(iot_backend):
    """IoT answering 403 (say, the role lacks iot:Publish) fails the task with the reason."""

    def forbidden(request, **kwargs):
        body = b'{"message": "Not authorized"}'
        return AWSResponse(request.url, 403, {"x-amzn-ErrorType": "ForbiddenException"}, _Raw(body))

    iot_backend.data_client().meta.events.register("before-send.iot-data.Publish", forbidden)
    with pytest.raises(PublishFailed, match="ForbiddenException|Not authorized"):
        services.event_publish(workspace_id=1, topic_suffix="conversations/1/x", payload_type="x", data={})
    assert published_to_moto() == []


def test_connection_details_in_aws(iot_backend, agent_client):
    """wss URL on the ATS endpoint naming the authorizer, the member's topics, and a realtime token."""
    response = agent_client.get("/api/realtime/connection")
    assert response.status_code == 200
    body = response.json()
    membership = agent_client.membership
    endpoint = iot_backend.data_endpoint()
    assert (body["backend"], body["mode"]) == ("iot", "live")
    assert body["url"] == f"wss://{endpoint}/mqtt?x-amz-customauthorizer-name=cue-realtime"
    assert body["credentials"]["username"] == "cue?x-amz-customauthorizer-name=cue-realtime"
    claims = realtime_token_verify(body["credentials"]["password"])
    assert (claims.workspace_id, claims.user_id, claims.client_id) == (
        membership.workspace_id,
        membership.user_id,
        body["client_id"],
    )
    assert body["expires_at"] == claims.expires_at.isoformat().replace("+00:00", "Z")
    assert response["Cache-Control"] == "no-store"


def test_connection_details_when_iot_cannot_be_reached(settings, agent_client, aws_calls):
    """Endpoint discovery refused (say, the role lacks iot:DescribeEndpoint): a clear 503, not a 500."""
    settings.REALTIME_BACKEND, settings.REALTIME_IOT_ENDPOINT = "iot", ""

    def forbidden(request, **kwargs):
        return AWSResponse(request.url, 403, {"x-amzn-ErrorType": "AccessDeniedException"}, _Raw(b"{}"))

    boto3.DEFAULT_SESSION.events.register("before-send.iot.DescribeEndpoint", forbidden)
    response = agent_client.get("/api/realtime/connection")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "realtime_unavailable"
    with pytest.raises(PublishFailed, match="cannot discover the AWS IoT data endpoint"):
        services.event_publish(workspace_id=1, topic_suffix="conversations/1/x", payload_type="x", data={})
