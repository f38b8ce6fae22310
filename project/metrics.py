"""CloudWatch metrics without an API call: one Embedded Metric Format (EMF) log line per observation.

In Lambda every line the function writes reaches CloudWatch Logs, and a line that is a JSON object
with an `_aws` member in the EMF shape becomes metrics there (no `cloudwatch:PutMetricData`, nothing
added to a request's latency). The line goes straight to stdout, not through Cue's JSON logger:
python-json-logger drops every `extra` key that starts with `_`, `_aws` included. Written in Lambda
(AWS_LAMBDA_FUNCTION_NAME is set) or with CUE_METRICS=1; elsewhere nothing is written.

Why not AWS Lambda Powertools' Metrics: it writes the same line, but brings a package of ~3 MB
unzipped to a zip kept under 20 MB, for a dozen lines of code (its buffering per invocation does
not fit Zappa's handler, which owns the invocation, either).

    metric_emit(name="TaskDead", dimensions={"Task": "apps.x.tasks.y"})

Every metric is in namespace `Cue` with the dimension `Stage`, and a second dimension set when
`dimensions` are given: [["Stage"], ["Stage", *dimensions]] (the alarms, tools/stage_aws.py, use
the Stage-only set). Names and units are listed in docs/operations.md ("Metrics and alarms").
"""

import json
import logging
import os
import sys
import time

logger = logging.getLogger("cue.metrics")
NAMESPACE = "Cue"
UNITS = frozenset({"Count", "Milliseconds", "Seconds", "Percent", "None"})


def _stage() -> str:
    return os.environ.get("STAGE", "").strip() or "local"


def metric_body(*, name: str, value: float = 1, unit: str = "Count", dimensions: dict | None = None) -> dict:
    """The EMF document for one value (a pure function, for the tests and the logger)."""
    if unit not in UNITS:
        raise ValueError(f"unit {unit!r} is not one of {sorted(UNITS)}")
    dimensions = {key: str(val) for key, val in (dimensions or {}).items()}
    if "Stage" in dimensions or name in dimensions:
        raise ValueError("Stage is set by metric_emit, and a dimension cannot share the metric's name")
    sets = [["Stage"], ["Stage", *sorted(dimensions)]] if dimensions else [["Stage"]]
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": [{"Name": name, "Unit": unit}]}
            ],
        },
        "Stage": _stage(),
        **dimensions,
        name: value,
    }


def metrics_enabled() -> bool:
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) or os.environ.get("CUE_METRICS") == "1"


def metric_emit(*, name: str, value: float = 1, unit: str = "Count", dimensions: dict | None = None) -> None:
    """Write one metric value as an EMF line on stdout; never raises into the caller's work."""
    if not metrics_enabled():
        return
    try:
        line = json.dumps(metric_body(name=name, value=value, unit=unit, dimensions=dimensions))
    except (ValueError, TypeError):
        logger.exception("metric not emitted", extra={"metric": name})
        return
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except OSError:
        logger.exception("metric not written", extra={"metric": name})
