"""EventBridge schedule expressions (`rate(...)`, `cron(...)`) as declared in zappa_settings.json `events`."""

import re

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
