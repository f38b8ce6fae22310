"""Hypothesis against the endpoints Intercom calls: random bodies, headers, signatures keep nothing and send nothing."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.conversations.models import Conversation, Message
from apps.integrations.models import CanvasAction, OutboundReply, WebhookDelivery
from apps.tasks.models import TaskRun
from tests.integrations.conftest import connect, connection, intercom_settings  # noqa: F401 - fixtures
from tests.integrations.intercom_payloads import APP_ID, APP_SECRET, body_signature, hub_signature

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/webhooks/intercom": ("HTTP_X_HUB_SIGNATURE", hub_signature),
    "/intercom/canvas/initialize": ("HTTP_X_BODY_SIGNATURE", body_signature),
    "/intercom/canvas/submit": ("HTTP_X_BODY_SIGNATURE", body_signature),
}
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Bodies that look like Intercom's (naming the connected app) as well as junk.
named = st.fixed_dictionaries(
    {"app_id": st.just(APP_ID), "workspace_id": st.just(APP_ID)},
    optional={"type": st.sampled_from(["notification_event", "x"]), "topic": st.text(max_size=40), "data": json_values},
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    named.map(lambda v: json.dumps(v).encode()),
)


def signatures_for(sign):
    """Everything but the signature of these bytes with a secret Cue holds."""
    return st.one_of(
        st.none(),
        st.text(max_size=80),
        st.from_regex(r"\Asha1=[0-9a-f]{40}\Z"),
        st.from_regex(r"\A[0-9a-fA-F]{64}\Z"),
        bodies.map(lambda other: sign(APP_SECRET, other + b" ")),  # Cue's secret, other bytes
        bodies.map(lambda other: sign("not-the-secret", other)),
    )


headers = st.dictionaries(
    st.sampled_from(["HTTP_X_FORWARDED_FOR", "HTTP_USER_AGENT", "HTTP_X_REQUEST_ID", "HTTP_CONTENT_ENCODING"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    max_size=3,
)
content_types = st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""])


def assert_nothing_kept():
    assert not WebhookDelivery.objects.exists()
    assert not TaskRun.objects.exists()
    assert not Conversation.objects.exists()
    assert not Message.objects.exists()
    assert not OutboundReply.objects.exists()
    assert not CanvasAction.objects.exists()


def assert_refusal_shape(response):
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert set(body["error"]) == {"code", "message", "fields"}, body


@pytest.mark.slow
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_unsigned_or_wrongly_signed_requests_store_and_send_nothing(client, connection, path):  # noqa: F811
    header, sign = ENDPOINTS[path]

    @FUZZ
    @given(body=bodies, signature=signatures_for(sign), extra=headers, content_type=content_types)
    def check(body, signature, extra, content_type):
        meta = dict(extra) | ({header: signature} if signature is not None else {})
        response = client.generic("POST", path, body, content_type=content_type, **meta)
        assert response.status_code in (401, 413), response.content
        assert_refusal_shape(response)
        assert_nothing_kept()

    check()


@pytest.mark.slow
@pytest.mark.parametrize("path", list(ENDPOINTS))
def test_correctly_signed_junk_is_refused_or_acknowledged_and_nothing_kept(client, connection, path):  # noqa: F811
    header, sign = ENDPOINTS[path]

    @FUZZ
    @given(body=bodies)
    def check(body):
        signed = {header: sign(APP_SECRET, body)}
        response = client.generic("POST", path, body, content_type="application/json", **signed)
        assert_refusal_shape(response)
        assert_nothing_kept()

    check()
