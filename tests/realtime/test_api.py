"""GET /api/realtime/connection: members only, their own workspace's topics, per backend."""

import pytest

from apps.realtime import services
from tests.realtime import sources

URL = "/api/realtime/connection"


def test_log_backend_says_realtime_is_off(agent_client):
    """The embedded default: no broker, so poll mode, no URL or credentials; the topics still name the member's tree."""
    response = agent_client.get(URL)
    assert response.status_code == 200
    membership = agent_client.membership
    ws, user = membership.workspace_id, membership.user_id
    body = response.json()
    assert body == {
        "backend": "log",
        "mode": "poll",
        "poll_seconds": 5,
        "url": None,
        "client_id": body["client_id"],
        "topics": [f"cue/{ws}/conversations", f"cue/{ws}/conversations/+/#", f"cue/{ws}/agents/{user}/#"],
        "qos": 1,
        "credentials": None,
        "expires_at": None,
    }
    assert body["client_id"].startswith(f"cue-{ws}-{user}-")
    assert response["Cache-Control"] == "no-store"


def test_poll_interval_comes_from_the_setting(agent_client, settings):
    settings.REALTIME_POLL_SECONDS = 12
    assert agent_client.get(URL).json()["poll_seconds"] == 12


def test_every_broker_backend_is_live_mode(agent_client, settings):
    """mqtt (and iot, tested with moto in test_iot.py) mean listening, never polling."""
    settings.REALTIME_BACKEND, settings.MQTT_URL = "mqtt", "mqtt://broker.internal:1883"
    body = agent_client.get(URL).json()
    assert (body["mode"], body["url"]) == ("live", "ws://broker.internal:9001")


def test_each_call_gets_its_own_client_id(agent_client):
    """Two tabs must not share a client id: a broker disconnects the older of two equal ids."""
    assert agent_client.get(URL).json()["client_id"] != agent_client.get(URL).json()["client_id"]


def test_mqtt_backend_points_at_the_brokers_websockets(agent_client, settings):
    settings.REALTIME_BACKEND, settings.MQTT_URL = "mqtt", "mqtt://broker.internal:1883"
    assert agent_client.get(URL).json()["url"] == "ws://broker.internal:9001"
    settings.MQTT_URL = "mqtts://broker.internal:8883"
    assert agent_client.get(URL).json()["url"] == "wss://broker.internal:9001"
    settings.REALTIME_WS_URL = "wss://realtime.example.com/mqtt"
    body = agent_client.get(URL).json()
    assert body["url"] == "wss://realtime.example.com/mqtt"
    assert body["credentials"] is None, "local Mosquitto is open (docs/realtime.md)"


def test_members_of_two_workspaces_get_only_their_own_tree(agent_client, other_owner_client):
    mine = agent_client.get(URL).json()["topics"]
    theirs = other_owner_client.get(URL).json()["topics"]
    ws_mine, ws_theirs = agent_client.membership.workspace_id, other_owner_client.membership.workspace_id
    assert all(t.startswith(f"cue/{ws_mine}/") for t in mine)
    assert all(t.startswith(f"cue/{ws_theirs}/") for t in theirs)


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token"])
def test_anonymous_callers_are_refused(api_client, authorization, db):
    if authorization:
        api_client.credentials(HTTP_AUTHORIZATION=authorization)
    response = api_client.get(URL)
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_only_get(agent_client):
    assert agent_client.post(URL, {}, format="json").status_code == 405


def test_listed_in_the_schema(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    assert "/api/realtime/connection" in schema["paths"]


def test_browser_connects_with_what_the_endpoint_returns(
    private_backend, settings, agent_client, other_owner_client, subscribe
):
    """Local end to end: MQTT over WebSockets with the URL, client id and topics given; B's events stay with B."""
    settings.REALTIME_WS_URL = private_backend.ws_url
    details = agent_client.get(URL).json()
    browser = subscribe(details["url"], details["topics"], transport="websockets", client_id=details["client_id"])
    mine, theirs = agent_client.membership.workspace_id, other_owner_client.membership.workspace_id

    services.suggestions_publish(
        workspace_id=theirs, conversation_id=1, message_id=1, suggestions=sources.sample_suggestions("B")
    )
    receipt = services.suggestions_publish(
        workspace_id=mine, conversation_id=2, message_id=2, suggestions=sources.sample_suggestions("A")
    )

    got = browser.wait_for(lambda m: True)
    assert got.payload["event_id"] == receipt["event_id"]
    assert [m.payload["message_id"] for m in browser.received] == [2], "B's event was published first"


def test_the_endpoints_topics_bring_every_event_once(private_backend, settings, agent_client, subscribe):
    """The list topic, a conversation's messages and suggestions, the agent's own branch: each event once.

    The filters do not overlap: a broker may deliver an event once per filter it matches.
    """
    settings.REALTIME_WS_URL = private_backend.ws_url
    details = agent_client.get(URL).json()
    browser = subscribe(details["url"], details["topics"], transport="websockets", client_id=details["client_id"])
    ws, user = agent_client.membership.workspace_id, agent_client.membership.user_id
    sent = [
        services.event_send(
            event=services.conversation_event(workspace_id=ws, conversation={"id": 5}, change="created")
        ),
        services.message_publish(workspace_id=ws, conversation_id=5, message={"id": 9}),
        services.suggestions_publish(
            workspace_id=ws, conversation_id=5, message_id=9, suggestions=sources.sample_suggestions("A")
        ),
        services.event_publish(workspace_id=ws, topic_suffix=f"agents/{user}/notices", payload_type="n", data={}),
    ]
    browser.wait_count(len(sent))
    # A marker published last on the list topic: once it is in, anything duplicated before it is in too.
    marker = services.event_send(
        event=services.conversation_event(workspace_id=ws, conversation={"id": 6}, change="created")
    )
    browser.wait_for(lambda m: m.payload["event_id"] == marker["event_id"])
    assert [m.payload["event_id"] for m in browser.received] == [r["event_id"] for r in [*sent, marker]]
    root = f"{settings.REALTIME_TOPIC_ROOT}/{ws}"
    assert [m.topic for m in browser.received][:3] == [
        f"{root}/conversations",
        f"{root}/conversations/5/messages",
        f"{root}/conversations/5/suggestions",
    ]
