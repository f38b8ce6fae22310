"""The auth throttle through the real Zappa handler: keyed on the event's sourceIp, never on X-Forwarded-For."""

import pytest
from rest_framework.throttling import SimpleRateThrottle

from tests.support.events import apigw_v1, apigw_v2

EVENTS = {"v1": apigw_v1, "v2": apigw_v2}


def _login(lambda_handler, make, i: int, *, email: str, source_ip: str, forwarded: str) -> int:
    event = make(
        "POST",
        "/api/auth/token",
        body={"email": email, "password": f"guess-{i}"},
        headers={"X-Forwarded-For": forwarded},
        source_ip=source_ip,
    )
    return lambda_handler(event)["statusCode"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_changing_x_forwarded_for_is_throttled_on_the_source_ip(lambda_handler, monkeypatch, version):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "5/min", "auth_account": "1000/hour"})
    make = EVENTS[version]
    statuses = [
        _login(
            lambda_handler, make, i, email=f"user{i}@example.com", source_ip="203.0.113.9", forwarded=f"198.51.100.{i}"
        )
        for i in range(30)
    ]
    assert statuses == [401] * 5 + [429] * 25
    # Another caller, sending the very header the first one used last, is its own address: not throttled.
    assert (
        _login(lambda_handler, make, 99, email="x@example.com", source_ip="203.0.113.10", forwarded="198.51.100.29")
        == 401
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_a_fleet_of_source_ips_is_throttled_on_the_account(lambda_handler, monkeypatch, version):
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES", {"auth": "1000/min", "auth_account": "10/hour"})
    make = EVENTS[version]
    statuses = [
        _login(lambda_handler, make, i, email="victim@example.com", source_ip=f"192.0.2.{i}", forwarded="198.51.100.1")
        for i in range(25)
    ]
    assert statuses == [401] * 10 + [429] * 15
