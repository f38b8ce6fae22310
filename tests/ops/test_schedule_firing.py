"""When EventBridge fires a rate(...) or cron(...) schedule: what the local emulator's scheduler relies on."""

from datetime import UTC, datetime, timedelta

import pytest

from tools.schedules import InvalidSchedule, next_fire, rate_seconds


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_interval(expression, seconds):
    assert rate_seconds(expression) == seconds


def test_cron_has_no_interval():
    assert rate_seconds("cron(0 6 * * ? *)") is None


def test_rate_counts_from_the_rule_creation():
    created = at("2026-03-01T10:00:30")
    assert next_fire("rate(1 minute)", created, anchor=created) == at("2026-03-01T10:01:30")
    assert next_fire("rate(1 minute)", at("2026-03-01T10:01:30"), anchor=created) == at("2026-03-01T10:02:30")
    assert next_fire("rate(5 minutes)", at("2026-03-01T10:07:00"), anchor=created) == at("2026-03-01T10:10:30")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # every day at 06:00 UTC
        ("cron(0 6 * * ? *)", "2026-03-01T05:59:59", "2026-03-01T06:00:00"),
        ("cron(0 6 * * ? *)", "2026-03-01T06:00:00", "2026-03-02T06:00:00"),
        # weekdays only, 10:15 (2026-03-06 is a Friday)
        ("cron(15 10 ? * MON-FRI *)", "2026-03-06T11:00:00", "2026-03-09T10:15:00"),
        # every 5 minutes from 08:00 to 17:55 on days 2-6 (Monday-Friday in EventBridge's numbering)
        ("cron(0/5 8-17 ? * 2-6 *)", "2026-03-06T17:56:00", "2026-03-09T08:00:00"),
        ("cron(0/5 8-17 ? * 2-6 *)", "2026-03-09T08:01:00", "2026-03-09T08:05:00"),
        # last day of the month, only in 2027
        ("cron(0 0 L * ? 2027)", "2026-12-31T12:00:00", "2027-01-31T00:00:00"),
        ("cron(0 0 L * ? 2027)", "2027-02-01T00:00:00", "2027-02-28T00:00:00"),
        # the first Monday of the month
        ("cron(30 9 ? * 2#1 *)", "2026-03-03T00:00:00", "2026-04-06T09:30:00"),
        # the last Friday of the month
        ("cron(0 18 ? * 6L *)", "2026-03-01T00:00:00", "2026-03-27T18:00:00"),
        # the weekday nearest the 1st: 2026-08-01 is a Saturday, so Monday the 3rd (never July)
        ("cron(0 12 1W * ? *)", "2026-07-02T00:00:00", "2026-08-03T12:00:00"),
        # months by name, a list of days
        ("cron(0 0 1,15 JAN,JUL ? *)", "2026-01-16T00:00:00", "2026-07-01T00:00:00"),
    ],
)
def test_cron_next_fire(expression, after, expected):
    assert next_fire(expression, at(after)) == at(expected)


def test_a_schedule_in_the_past_never_fires_again():
    assert next_fire("cron(0 0 1 1 ? 2020)", at("2026-01-01T00:00:00")) is None


def test_invalid_expressions_are_refused():
    with pytest.raises(InvalidSchedule):
        next_fire("cron(0 6 * * *)", at("2026-01-01T00:00:00"))
    with pytest.raises(InvalidSchedule):
        next_fire("cron(0 20-6 * * ? *)", at("2026-01-01T00:00:00"))


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("rate(1 minute)", datetime(2026, 1, 1))  # noqa: DTZ001 - the point of the test


def test_every_fire_of_a_day_in_order():
    """Walking next_fire from midnight lists each fire of cron(0/20 9-10 ...) once, in order."""
    fires, t = [], at("2026-03-02T00:00:00")
    while (t := next_fire("cron(0/20 9-10 * * ? *)", t)) < at("2026-03-03T00:00:00"):
        fires.append(t.strftime("%H:%M"))
    assert fires == ["09:00", "09:20", "09:40", "10:00", "10:20", "10:40"]
    assert timedelta(0) < next_fire("rate(1 day)", t) - t <= timedelta(days=1)
