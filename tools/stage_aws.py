"""A stage's AWS resources that Zappa does not make: realtime authorizer, failure destination, as code.

    python -m tools.stage_aws STAGE create [-s SETTINGS]   # create or bring up to date (after `zappa deploy`)
    python -m tools.stage_aws STAGE remove [-s SETTINGS]   # remove every one of them (with `zappa undeploy`)

Idempotent: each part reads what exists, changes only what differs from what the stage declares,
and says what it changed (a second run says "no changes"). The parts, in creation order:

- `authorizer`: the IoT custom authorizer `REALTIME_IOT_AUTHORIZER` (default `cue-realtime-<stage>`)
  invoking the stage's function, ACTIVE, signing disabled: the token travels as the MQTT password,
  which IoT does not signature-check; apps/realtime/authorizer.py verifies it. No token key name:
  IoT reads one only for signed tokens in an HTTP header or query parameter, and the console sends
  its token as the password (apps/realtime/services.py).
- `permission`: the statement on the function's policy letting iot.amazonaws.com invoke it, from
  that authorizer only (SourceArn).
- `domain`: the IoT domain configuration `cue-realtime-<stage>` (service DATA) whose default
  authorizer is the stage's, so a browser's WebSocket upgrade is authorized even before it names one.
- `failures`: the SQS queue `<function>-async-failures` (14 days' retention) and the function's
  asynchronous-invocation config: an SNS-invoked invocation that fails outside the task ledger (a
  crash before the ledger row is claimed, an import error, a timeout) is retried MAX_RETRY_ATTEMPTS
  times by Lambda, then lands in that queue with its event and error (docs/operations.md).

- `alarms`: the stage's CloudWatch alarms (ALARMS below) on Cue's own metrics (project/metrics.py,
  the Embedded Metric Format: no API call per request) and on the function, topic and queue,
  all notifying the SNS topic `<function>-alarms` (subscribe an operator's address to it).

`permission` and the invoke config need the function: before `zappa deploy` they are reported as
waiting, and the next run (after deploy) makes them. Removing deletes in reverse order; what is
already gone (the function, after `zappa undeploy`) is skipped.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tools import stages as stage_files

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "zappa_settings.json"
PARTS = ("authorizer", "permission", "domain", "failures", "alarms")
PERMISSION_SID = "cue-realtime-authorizer"
# Lambda's defaults for asynchronous invocation are 2 retries over 6 hours; a task's own retries are the
# ledger's (the sweeper), so these only cover what fails outside it: retry twice, give up after an hour.
MAX_RETRY_ATTEMPTS = 2
MAX_EVENT_AGE_SECONDS = 3600
# SQS's longest retention: an operator has two weeks to look at a failed event.
FAILURE_RETENTION_SECONDS = 14 * 24 * 3600


class SetupError(Exception):
    """An operator-facing reason the setup stopped."""


class Waiting(str):
    """Not a change: a part that needs the function, which `zappa deploy` has not made yet."""


@dataclass(frozen=True)
class StageAws:
    stage: str
    function: str
    region: str
    authorizer: str
    domain_configuration: str
    failure_queue: str

    def function_arn(self, account: str) -> str:
        return f"arn:aws:lambda:{self.region}:{account}:function:{self.function}"

    def authorizer_arn(self, account: str) -> str:
        return f"arn:aws:iot:{self.region}:{account}:authorizer/{self.authorizer}"

    def failure_queue_arn(self, account: str) -> str:
        return f"arn:aws:sqs:{self.region}:{account}:{self.failure_queue}"

    @property
    def async_topic(self) -> str:
        return f"{self.function}-zappa-async"

    @property
    def alarm_topic(self) -> str:
        return f"{self.function}-alarms"

    def alarm_topic_arn(self, account: str) -> str:
        return f"arn:aws:sns:{self.region}:{account}:{self.alarm_topic}"


def stage_aws(config: dict, stage: str) -> StageAws:
    """The stage's names, as project/settings.py and Zappa derive them."""
    function = stage_files.function_name(config, stage)
    env = config.get("environment_variables") or {}
    authorizer = env.get("REALTIME_IOT_AUTHORIZER") or f"cue-realtime-{stage}"
    return StageAws(
        stage=stage,
        function=function,
        region=config.get("aws_region", "us-east-1"),
        authorizer=authorizer,
        domain_configuration=f"cue-realtime-{stage}",
        failure_queue=f"{function}-async-failures",
    )


class Clients:
    """boto3 clients for the stage's region; `overrides` replaces one by part name or service (tests: a Stubber)."""

    def __init__(self, region: str, overrides: dict | None = None, **client_kwargs):
        self.region = region
        self.overrides = overrides or {}
        self.client_kwargs = client_kwargs
        self._made: dict = {}

    def __call__(self, service: str, part: str | None = None):
        if part in self.overrides:
            return self.overrides[part]
        if service in self.overrides:
            return self.overrides[service]
        if service not in self._made:
            import boto3

            self._made[service] = boto3.client(service, region_name=self.region, **self.client_kwargs)
        return self._made[service]


def _code(exc) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _missing(exc) -> bool:
    code = _code(exc)
    return code in ("ResourceNotFoundException", "NotFoundException", "NotFound") or "NonExistentQueue" in code


def _found(call, **kwargs) -> dict | None:
    """The call's answer, or None when what it names does not exist (any other error is raised)."""
    from botocore.exceptions import ClientError

    try:
        return call(**kwargs)
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def _function_exists(lam, function: str) -> bool:
    return _found(lam.get_function_configuration, FunctionName=function) is not None


# ------------------------------------------------------------------------------
# authorizer (moto 5.2 implements none of these calls: tested with botocore's Stubber)
# ------------------------------------------------------------------------------
def _describe_authorizer(iot, name: str) -> dict | None:
    found = _found(iot.describe_authorizer, authorizerName=name)
    return found and found["authorizerDescription"]


def authorizer_create(names: StageAws, account: str, iot) -> list[str]:
    wanted_arn = names.function_arn(account)
    current = _describe_authorizer(iot, names.authorizer)
    if current is not None and not current.get("signingDisabled"):
        # Signing cannot be switched off by UpdateAuthorizer: the authorizer is replaced.
        authorizer_remove(names, account, iot)
        current = None
    if current is None:
        iot.create_authorizer(
            authorizerName=names.authorizer,
            authorizerFunctionArn=wanted_arn,
            signingDisabled=True,
            status="ACTIVE",
            enableCachingForHttp=False,
            tags=[{"Key": "cue:stage", "Value": names.stage}],
        )
        return [f"created IoT authorizer {names.authorizer} -> {names.function}"]
    if current.get("authorizerFunctionArn") == wanted_arn and current.get("status") == "ACTIVE":
        return []
    iot.update_authorizer(authorizerName=names.authorizer, authorizerFunctionArn=wanted_arn, status="ACTIVE")
    return [f"updated IoT authorizer {names.authorizer} -> {names.function}, ACTIVE"]


def authorizer_remove(names: StageAws, account: str, iot) -> list[str]:
    current = _describe_authorizer(iot, names.authorizer)
    if current is None:
        return []
    if current.get("status") != "INACTIVE":  # IoT deletes only an inactive authorizer
        iot.update_authorizer(authorizerName=names.authorizer, status="INACTIVE")
    iot.delete_authorizer(authorizerName=names.authorizer)
    return [f"deleted IoT authorizer {names.authorizer}"]


# ------------------------------------------------------------------------------
# permission: Lambda's resource policy
# ------------------------------------------------------------------------------
def _statement(lam, function: str) -> dict | None:
    found = _found(lam.get_policy, FunctionName=function)
    policy = json.loads(found["Policy"]) if found else {}
    return next((s for s in policy.get("Statement", []) if s.get("Sid") == PERMISSION_SID), None)


def permission_grants(statement: dict | None, source_arn: str) -> bool:
    if not statement or statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal", {})
    principal = principal.get("Service") if isinstance(principal, dict) else principal
    condition = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
    return principal == "iot.amazonaws.com" and condition == source_arn


def permission_create(names: StageAws, account: str, lam) -> list[str]:
    if not _function_exists(lam, names.function):
        return [Waiting(f"waiting for {names.function}: run again after `zappa deploy` to let IoT invoke it")]
    source = names.authorizer_arn(account)
    current = _statement(lam, names.function)
    if permission_grants(current, source):
        return []
    if current is not None:
        lam.remove_permission(FunctionName=names.function, StatementId=PERMISSION_SID)
    lam.add_permission(
        FunctionName=names.function,
        StatementId=PERMISSION_SID,
        Action="lambda:InvokeFunction",
        Principal="iot.amazonaws.com",
        SourceArn=source,
    )
    return [f"{'replaced' if current else 'added'} permission {PERMISSION_SID}: IoT may invoke {names.function}"]


def permission_remove(names: StageAws, account: str, lam) -> list[str]:
    from botocore.exceptions import ClientError

    if _statement(lam, names.function) is None:
        return []
    try:
        lam.remove_permission(FunctionName=names.function, StatementId=PERMISSION_SID)
    except ClientError as exc:
        if _missing(exc):
            return []
        raise
    return [f"removed permission {PERMISSION_SID} from {names.function}"]


# ------------------------------------------------------------------------------
# domain: the IoT domain configuration browsers connect through
# ------------------------------------------------------------------------------
def _domain(iot, name: str) -> dict | None:
    return _found(iot.describe_domain_configuration, domainConfigurationName=name)


def domain_authorizer_config(names: StageAws) -> dict:
    # Override allowed: the console names the authorizer in its URL and username as well.
    return {"defaultAuthorizerName": names.authorizer, "allowAuthorizerOverride": True}


def domain_create(names: StageAws, account: str, iot) -> list[str]:
    wanted = domain_authorizer_config(names)
    current = _domain(iot, names.domain_configuration)
    if current is None:
        iot.create_domain_configuration(
            domainConfigurationName=names.domain_configuration,
            serviceType="DATA",
            authorizerConfig=wanted,
            tags=[{"Key": "cue:stage", "Value": names.stage}],
        )
        return [f"created IoT domain configuration {names.domain_configuration} (authorizer {names.authorizer})"]
    if current.get("authorizerConfig") == wanted and current.get("domainConfigurationStatus") == "ENABLED":
        return []
    iot.update_domain_configuration(
        domainConfigurationName=names.domain_configuration, authorizerConfig=wanted, domainConfigurationStatus="ENABLED"
    )
    return [f"updated IoT domain configuration {names.domain_configuration}: authorizer {names.authorizer}, ENABLED"]


def domain_remove(names: StageAws, account: str, iot) -> list[str]:
    current = _domain(iot, names.domain_configuration)
    if current is None:
        return []
    if current.get("domainConfigurationStatus") != "DISABLED":  # IoT deletes only a disabled one
        iot.update_domain_configuration(
            domainConfigurationName=names.domain_configuration, domainConfigurationStatus="DISABLED"
        )
    iot.delete_domain_configuration(domainConfigurationName=names.domain_configuration)
    return [f"deleted IoT domain configuration {names.domain_configuration}"]


# ------------------------------------------------------------------------------
# failures: the on-failure destination of asynchronous invocations
# ------------------------------------------------------------------------------
def _queue_url(sqs, name: str) -> str | None:
    found = _found(sqs.get_queue_url, QueueName=name)
    return found and found["QueueUrl"]


def failure_queue_attributes() -> dict[str, str]:
    return {"MessageRetentionPeriod": str(FAILURE_RETENTION_SECONDS), "SqsManagedSseEnabled": "true"}


def invoke_config(names: StageAws, account: str) -> dict:
    return {
        "MaximumRetryAttempts": MAX_RETRY_ATTEMPTS,
        "MaximumEventAgeInSeconds": MAX_EVENT_AGE_SECONDS,
        "DestinationConfig": {"OnFailure": {"Destination": names.failure_queue_arn(account)}},
    }


def _invoke_config(lam, function: str) -> dict | None:
    found = _found(lam.get_function_event_invoke_config, FunctionName=function)
    if found is None:
        return None
    return {key: found.get(key) for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")}


def failures_create(names: StageAws, account: str, sqs, lam) -> list[str]:
    changes = []
    wanted = failure_queue_attributes()
    url = _queue_url(sqs, names.failure_queue)
    if url is None:
        sqs.create_queue(QueueName=names.failure_queue, Attributes=wanted, tags={"cue:stage": names.stage})
        changes.append(f"created SQS queue {names.failure_queue}")
    else:
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(wanted))["Attributes"]
        if {k: current.get(k) for k in wanted} != wanted:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=wanted)
            changes.append(f"updated SQS queue {names.failure_queue}: {wanted}")
    if not _function_exists(lam, names.function):
        return [
            *changes,
            Waiting(f"waiting for {names.function}: run again after `zappa deploy` to set its failure destination"),
        ]
    config = invoke_config(names, account)
    current = _invoke_config(lam, names.function)
    if current != config:
        if current is not None:
            # PUT replaces the whole config on AWS; moto 5.2 appends it and keeps answering the first.
            # Deleting first is the same on AWS (no invocation is queued against the config) and true on moto.
            lam.delete_function_event_invoke_config(FunctionName=names.function)
        lam.put_function_event_invoke_config(FunctionName=names.function, **config)
        changes.append(
            f"asynchronous invocations of {names.function}: {MAX_RETRY_ATTEMPTS} retries, "
            f"on failure -> {names.failure_queue}"
        )
    return changes


def failures_remove(names: StageAws, account: str, sqs, lam) -> list[str]:
    from botocore.exceptions import ClientError

    changes = []
    if _function_exists(lam, names.function) and _invoke_config(lam, names.function) is not None:
        try:
            lam.delete_function_event_invoke_config(FunctionName=names.function)
            changes.append(f"removed the asynchronous-invocation config of {names.function}")
        except ClientError as exc:
            if not _missing(exc):
                raise
    url = _queue_url(sqs, names.failure_queue)
    if url is not None:
        sqs.delete_queue(QueueUrl=url)
        changes.append(f"deleted SQS queue {names.failure_queue}")
    return changes


# ------------------------------------------------------------------------------
# alarms: CloudWatch alarms per stage, notifying the stage's alarm topic
# ------------------------------------------------------------------------------
NAMESPACE = "Cue"  # project/metrics.py's
# name suffix -> (namespace, metric, dimension, statistic, threshold, periods, what it means)
ALARMS = {
    "dead-tasks": (NAMESPACE, "TaskDead", "Stage", "Sum", 0, 1, "a task used its attempts: docs/operations.md"),
    "webhook-5xx": (NAMESPACE, "WebhookServerError", "Stage", "Sum", 0, 1, "a webhook was answered 5xx"),
    "webhook-ack-p95": (NAMESPACE, "WebhookAckLatency", "Stage", "p95", 1000, 3, "webhook acks p95 over 1 s"),
    "sns-publish-failures": (NAMESPACE, "TaskPublishFailed", "Stage", "Sum", 0, 1, "a task could not be sent"),
    "realtime-publish-failures": (NAMESPACE, "RealtimePublishFailed", "Stage", "Sum", 0, 1, "a push was lost"),
    "sns-delivery-failures": (
        "AWS/SNS",
        "NumberOfNotificationsFailed",
        "TopicName",
        "Sum",
        0,
        1,
        "SNS could not invoke the function",
    ),
    "function-errors": ("AWS/Lambda", "Errors", "FunctionName", "Sum", 0, 1, "an invocation raised to Lambda"),
    "async-failures": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "QueueName",
        "Maximum",
        0,
        1,
        "failed invocations waiting in the failure queue",
    ),
}
ALARM_PERIOD_SECONDS = 300


def alarm_definitions(names: StageAws, account: str) -> dict[str, dict]:
    """Each alarm's put_metric_alarm arguments, by name; dimensions point at the stage's own resources."""
    values = {
        "Stage": names.stage,
        "TopicName": names.async_topic,
        "FunctionName": names.function,
        "QueueName": names.failure_queue,
    }
    definitions = {}
    for suffix, (namespace, metric, dimension, statistic, threshold, periods, meaning) in ALARMS.items():
        name = f"{names.function}-{suffix}"
        statistic_args = {"ExtendedStatistic": statistic} if statistic.startswith("p") else {"Statistic": statistic}
        definitions[name] = {
            "AlarmName": name,
            "AlarmDescription": f"{names.stage}: {meaning}",
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": dimension, "Value": values[dimension]}],
            **statistic_args,
            "Period": ALARM_PERIOD_SECONDS,
            "EvaluationPeriods": periods,
            "Threshold": float(threshold),
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "ActionsEnabled": True,
            "AlarmActions": [names.alarm_topic_arn(account)],
            "OKActions": [names.alarm_topic_arn(account)],
        }
    return definitions


def alarm_differences(wanted: dict, got: dict | None) -> list[str]:
    if got is None:
        return ["missing"]
    return sorted(key for key, value in wanted.items() if got.get(key) != value)


def _alarms(cloudwatch, names: list[str]) -> dict[str, dict]:
    found = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    return {alarm["AlarmName"]: alarm for alarm in found}


def _topic_exists(sns, arn: str) -> bool:
    return _found(sns.get_topic_attributes, TopicArn=arn) is not None


def alarms_create(names: StageAws, account: str, cloudwatch, sns) -> list[str]:
    changes = []
    if not _topic_exists(sns, names.alarm_topic_arn(account)):
        sns.create_topic(Name=names.alarm_topic, Tags=[{"Key": "cue:stage", "Value": names.stage}])
        changes.append(f"created SNS topic {names.alarm_topic}")
    wanted = alarm_definitions(names, account)
    current = _alarms(cloudwatch, list(wanted))
    for name, definition in wanted.items():
        differing = alarm_differences(definition, current.get(name))
        if differing:
            cloudwatch.put_metric_alarm(**definition)
            changes.append(f"{'created' if differing == ['missing'] else 'updated'} alarm {name}")
    return changes


def alarms_remove(names: StageAws, account: str, cloudwatch, sns) -> list[str]:
    changes = []
    present = sorted(_alarms(cloudwatch, list(alarm_definitions(names, account))))
    if present:
        cloudwatch.delete_alarms(AlarmNames=present)
        changes.append(f"deleted alarms {', '.join(present)}")
    if _topic_exists(sns, names.alarm_topic_arn(account)):
        sns.delete_topic(TopicArn=names.alarm_topic_arn(account))
        changes.append(f"deleted SNS topic {names.alarm_topic}")
    return changes


# ------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------
def apply(
    names: StageAws, action: str, clients: Clients, *, parts: tuple[str, ...] = PARTS, account: str | None = None
) -> list[str]:
    """Create (or bring up to date) or remove the chosen parts; the changes made, in order (none: up to date).

    A Waiting line among them is no change: a part that needs the function, not deployed yet.
    """
    if action not in ("create", "remove"):
        raise SetupError(f"unknown action {action!r}: create or remove")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise SetupError(f"unknown parts {unknown}; known: {list(PARTS)}")
    account = account or clients("sts").get_caller_identity()["Account"]
    steps = {
        "authorizer": lambda verb: verb(names, account, clients("iot", "authorizer")),
        "permission": lambda verb: verb(names, account, clients("lambda", "permission")),
        "domain": lambda verb: verb(names, account, clients("iot", "domain")),
        "failures": lambda verb: verb(names, account, clients("sqs", "failures"), clients("lambda", "failures")),
        "alarms": lambda verb: verb(names, account, clients("cloudwatch", "alarms"), clients("sns", "alarms")),
    }
    verbs = {
        "authorizer": (authorizer_create, authorizer_remove),
        "permission": (permission_create, permission_remove),
        "domain": (domain_create, domain_remove),
        "failures": (failures_create, failures_remove),
        "alarms": (alarms_create, alarms_remove),
    }
    order = [p for p in PARTS if p in parts]
    if action == "remove":
        order.reverse()  # the domain configuration names the authorizer: it goes first
    changes: list[str] = []
    for part in order:
        changes += steps[part](verbs[part][0 if action == "create" else 1])
    return changes


def stage_config(stage: str, settings_path: Path) -> dict:
    settings = json.loads(settings_path.read_text())
    if stage not in settings:
        raise SetupError(f"no stage {stage!r} in {settings_path}")
    return stage_files.resolved(settings, stage)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stage_aws", description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("action", choices=["create", "remove"])
    parser.add_argument("-s", "--settings", type=Path, default=SETTINGS, help="settings (or a stage overlay)")
    parser.add_argument("--only", action="append", choices=PARTS, help="only this part (repeatable)")
    args = parser.parse_args(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        names = stage_aws(stage_config(args.stage, args.settings), args.stage)
        changes = apply(names, args.action, Clients(names.region), parts=tuple(args.only or PARTS))
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for change in changes:
        print(change)
    if not [c for c in changes if not isinstance(c, Waiting)]:
        print(f"{args.stage}: no changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
