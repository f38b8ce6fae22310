"""EventBridge schedule expressions (`rate(...)`, `cron(...)`) as declared in zappa_settings.json `events`."""

import calendar
import re
from datetime import UTC, date, datetime, timedelta

RATE_RE = re.compile(r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)$")
CRON_RE = re.compile(r"^cron\((?P<fields>[^()]+)\)$")

_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"


def _field(number: str, extra: str = "") -> re.Pattern:
    item = rf"(?:\*|(?:{number})(?:-(?:{number}))?)(?:/[0-9]+)?"
    return re.compile(rf"^(?:{extra}|{item}(?:,{item})*)$" if extra else rf"^{item}(?:,{item})*$")


# minutes, hours, day-of-month, month, day-of-week, year (EventBridge's six-field cron).
_CRON_FIELDS = [
    ("minutes", _field(r"[0-5]?[0-9]")),
    ("hours", _field(r"[01]?[0-9]|2[0-3]")),
    ("day-of-month", _field(r"[1-9]|[12][0-9]|3[01]", extra=r"\?|L|W|[1-9]W|[12][0-9]W|3[01]W")),
    ("month", _field(rf"[1-9]|1[0-2]|{_MONTHS}")),
    ("day-of-week", _field(rf"[1-7]|{_DAYS}", extra=rf"\?|L|[1-7]L|(?:[1-7]|{_DAYS})#[1-5]")),
    ("year", _field(r"19[7-9][0-9]|2[01][0-9][0-9]")),
]


class InvalidSchedule(ValueError):
    pass


def validate_expression(expression: str) -> str:
    """Return the expression, or raise InvalidSchedule saying what EventBridge would reject."""
    rate = RATE_RE.match(expression)
    if rate:
        singular = not rate["unit"].endswith("s")
        if singular != (rate["value"] == "1"):
            raise InvalidSchedule(f"{expression!r}: use '1 minute' but '5 minutes' (EventBridge checks the plural)")
        return expression
    cron = CRON_RE.match(expression)
    if not cron:
        raise InvalidSchedule(f"{expression!r} is neither rate(N unit) nor cron(6 fields)")
    fields = cron["fields"].split()
    if len(fields) != 6:
        raise InvalidSchedule(f"{expression!r}: cron takes 6 fields, not {len(fields)}")
    for (name, pattern), value in zip(_CRON_FIELDS, fields, strict=True):
        if not pattern.match(value.upper()):
            raise InvalidSchedule(f"{expression!r}: invalid {name} field {value!r}")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise InvalidSchedule(f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    return expression


def stage_rules(config: dict, function_name: str) -> list[dict]:
    """The stage's rules as Zappa names them: each job's expression(s), and keep-warm when it is on."""
    from zappa.core import Zappa

    events = [dict(e) for e in config.get("events", []) if e.get("expression") or e.get("expressions")]
    if config.get("keep_warm", True):
        events.append(
            {
                "name": "zappa-keep-warm",
                "function": "handler.keep_warm_callback",
                "expression": config.get("keep_warm_expression", "rate(4 minutes)"),
            }
        )
    namer = Zappa(load_credentials=False)
    rules = []
    for event in events:
        for index, expression in enumerate(event.get("expressions") or [event["expression"]]):
            name = namer.get_scheduled_event_name(event, event["function"], function_name, index)
            rules.append({"name": name, "expression": expression, "function": event["function"]})
    return rules


# ------------------------------------------------------------------------------
# When a schedule fires (the local emulator's EventBridge)
# ------------------------------------------------------------------------------
# Written here rather than taken from croniter: EventBridge's cron has a year field, `?`, and
# numbers its days of the week 1-7 from Sunday (cron's are 0-6), and the grammar above is all we use.
_RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS.split("|"), start=1)}
_DAY_NUMBERS = {name: number for number, name in enumerate(_DAYS.split("|"), start=1)}
_LAST_YEAR = 2199  # EventBridge's year field ends here; a schedule with nothing before it never fires


def rate_seconds(expression: str) -> int | None:
    """The interval of a rate(...) expression in seconds; None for cron(...)."""
    rate = RATE_RE.match(validate_expression(expression))
    if not rate:
        return None
    return int(rate["value"]) * _RATE_SECONDS[rate["unit"].rstrip("s")]


def _number(text: str, names: dict[str, int]) -> int:
    return names[text] if text in names else int(text)


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    """`*`, `5`, `1-5`, `0/15`, `MON-FRI`, `1,3,5` -> the set of numbers it names."""
    names = names or {}
    values: set[int] = set()
    for item in field.split(","):
        base, _, step = item.partition("/")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-")
            start, end = _number(first, names), _number(last, names)
        else:
            start = _number(base, names)
            end = high if step else start  # `0/15` runs from 0 to the field's end
        if start > end:
            raise InvalidSchedule(f"range {item!r} runs backwards")
        values.update(range(start, end + 1, int(step or 1)))
    return frozenset(v for v in values if low <= v <= high)


def _weekday(day: date) -> int:
    """EventBridge's day of the week: 1 = Sunday ... 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _nearest_weekday(year: int, month: int, day_of_month: int) -> int:
    """`15W`: the weekday nearest the 15th, never leaving the month."""
    last = _last_day(year, month)
    target = date(year, month, min(day_of_month, last))
    if target.weekday() == 5:  # Saturday: Friday, unless that is in the previous month
        return target.day - 1 if target.day > 1 else target.day + 2
    if target.weekday() == 6:  # Sunday: Monday, unless that is in the next month
        return target.day + 1 if target.day < last else target.day - 2
    return target.day


def _day_rule(day_of_month: str, day_of_week: str):
    """A predicate on dates for the two day fields (exactly one of them is `?`)."""
    if day_of_month != "?":
        if day_of_month == "L":
            return lambda d: d.day == _last_day(d.year, d.month)
        if day_of_month.endswith("W"):
            if day_of_month == "W":
                raise InvalidSchedule("`W` needs a day of the month, e.g. `15W`")
            wanted = int(day_of_month[:-1])
            return lambda d: d.day == _nearest_weekday(d.year, d.month, wanted)
        days = _values(day_of_month, 1, 31)
        return lambda d: d.day in days
    if day_of_week == "L":  # alone, `L` is the last day of the week: Saturday
        return lambda d: _weekday(d) == 7
    if day_of_week.endswith("L"):  # `6L`: the last Friday of the month
        wanted = _number(day_of_week[:-1], _DAY_NUMBERS)
        return lambda d: _weekday(d) == wanted and d.day + 7 > _last_day(d.year, d.month)
    if "#" in day_of_week:  # `2#1`: the first Monday of the month
        weekday, _, nth = day_of_week.partition("#")
        wanted = _number(weekday, _DAY_NUMBERS)
        return lambda d: _weekday(d) == wanted and (d.day - 1) // 7 + 1 == int(nth)
    days = _values(day_of_week, 1, 7, _DAY_NUMBERS)
    return lambda d: _weekday(d) in days


def next_fire(expression: str, after: datetime, *, anchor: datetime | None = None) -> datetime | None:
    """The first time strictly after `after` when EventBridge fires the schedule (UTC); None if never again.

    A rate fires every interval counted from `anchor` (when the rule was created; `after` if not given).
    """
    if after.tzinfo is None:
        raise ValueError("next_fire needs a timezone-aware datetime")
    after = after.astimezone(UTC)
    interval = rate_seconds(expression)
    if interval is not None:
        anchor = (anchor or after).astimezone(UTC)
        elapsed = max(0.0, (after - anchor).total_seconds())
        return anchor + timedelta(seconds=(int(elapsed // interval) + 1) * interval)

    minutes, hours, day_of_month, month, day_of_week, year = CRON_RE.match(expression)["fields"].upper().split()
    minute_set = sorted(_values(minutes, 0, 59))
    hour_set = sorted(_values(hours, 0, 23))
    month_set = _values(month, 1, 12, _MONTH_NUMBERS)
    year_set = _values(year, 1970, _LAST_YEAR)
    day_matches = _day_rule(day_of_month, day_of_week)

    start = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    while day.year <= _LAST_YEAR:
        if day.year not in year_set:
            day = date(day.year + 1, 1, 1)
            continue
        if day.month not in month_set:
            day = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
            continue
        if day_matches(day):
            for hour in hour_set:
                for minute in minute_set:
                    candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if candidate >= start:
                        return candidate
        day += timedelta(days=1)
    return None
