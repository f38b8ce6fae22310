"""Deploy rehearsal: the real `zappa deploy` / `update` / `undeploy` of a stage against moto's server, checked.

Each stage is deployed with Zappa itself, into moto's server on loopback, from a generated overlay
of the settings that changes only what must not run here (see REHEARSAL_OVERRIDES); what now
exists is compared with what the stage's settings declare, then the stage is undeployed and
nothing of it may remain. Every other connection is refused and reported (OutsideGuard).

`zappa update` cannot be rehearsed to the end: whatever the settings, it calls Lambda's
ListFunctionUrlConfigs (to create, update or delete a function URL), which moto 5.2 does not
implement; the rehearsal runs it, checks what it did before that call, and reports the rest.
"""

import argparse
import base64
import contextlib
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tools import iam as iam_policies
from tools import stage_aws
from tools import stages as stage_files
from tools.artifact import RUNTIME_PATHS, allowed_top_levels, memory_tmpdir, runtime_tree, runtime_venv
from tools.local_aws import LocalAws, OutsideGuard, clean_aws_environment
from tools.schedules import stage_rules

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "zappa_settings.json"

REHEARSAL_OVERRIDES = {
    # Zappa GETs the deployed API's URL after deploy/update: that URL is on the internet.
    "touch": False,
    # Otherwise Zappa looks up manylinux wheels on PyPI for every package with C extensions.
    "use_precompiled_packages": False,
    # Keep the zip Zappa built and uploaded, to check what it carries (its settings, what was excluded).
    "delete_local_zip": False,
}
# What must never be baked into a package or a function's configuration (same rule as the settings test).
SECRETISH = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|_KEY$", re.IGNORECASE)
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Zappa's role name when the stage names none; `zappa undeploy` never deletes it.
ROLE_SUFFIX = "-ZappaLambdaExecutionRole"
# The one call moto does not answer on `zappa update` (cli.update -> delete/update_lambda_function_url).
UPDATE_STOP = "ListFunctionUrlConfigs"
UPDATE_NOT_REHEARSED = (
    "after ListFunctionUrlConfigs, `zappa update` would also re-create the EventBridge rules and the "
    "async SNS topic (schedule()), update Cognito triggers and touch the API: not rehearsed on update "
    "(deploy rehearses the rules and the topic)"
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Step:
    command: list[str]
    returncode: int
    seconds: float
    output: str


@dataclass
class StageReport:
    stage: str
    function: str
    steps: dict[str, Step] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outside_attempts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name == name)


# ------------------------------------------------------------------------------
# Stages and their expected resources
# ------------------------------------------------------------------------------
def discover_stages(settings_path: Path = SETTINGS, root: Path = ROOT) -> list[tuple[str, Path]]:
    """Every deployable stage: the committed ones no other stage extends, then each feature-branch overlay's."""
    committed = json.loads(settings_path.read_text())
    parents = {config.get("extends") for config in committed.values()}
    found = [(stage, settings_path) for stage in committed if stage not in parents]
    for overlay in sorted(root.glob("zappa_settings.feature-*.json")):
        found += [(stage, overlay) for stage in json.loads(overlay.read_text()) if stage not in committed]
    return found


def role_name(config: dict, function: str) -> str | None:
    """The execution role Zappa manages for the stage; None when the stage brings its own (role_arn)."""
    if config.get("role_arn"):
        return None
    return config.get("role_name", function + ROLE_SUFFIX)


# ------------------------------------------------------------------------------
# What exists in the emulator
# ------------------------------------------------------------------------------
def inventory(aws: LocalAws) -> dict[str, set[str]]:
    """Every resource of the kinds Zappa creates, by kind: compared before deploy and after undeploy."""
    lam, events, sns, cfn = aws.client("lambda"), aws.client("events"), aws.client("sns"), aws.client("cloudformation")
    apigw, apigw2, iam, s3, logs = (
        aws.client("apigateway"),
        aws.client("apigatewayv2"),
        aws.client("iam"),
        aws.client("s3"),
        aws.client("logs"),
    )
    objects = set()
    buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for bucket in buckets:
        objects |= {f"{bucket}/{o['Key']}" for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    return {
        "lambda function": {f["FunctionName"] for f in lam.list_functions()["Functions"]},
        "EventBridge rule": {r["Name"] for r in events.list_rules()["Rules"]},
        "SNS topic": {t["TopicArn"] for t in sns.list_topics()["Topics"]},
        "SNS subscription": {s["SubscriptionArn"] for s in sns.list_subscriptions()["Subscriptions"]},
        "CloudFormation stack": {
            s["StackName"] for s in cfn.list_stacks()["StackSummaries"] if s["StackStatus"] != "DELETE_COMPLETE"
        },
        "REST API": {a["name"] for a in apigw.get_rest_apis()["items"]},
        "HTTP API": {a["Name"] for a in apigw2.get_apis()["Items"]},
        "IAM role": {r["RoleName"] for r in iam.list_roles()["Roles"]},
        "S3 bucket": buckets,
        "S3 object": objects,
        "log group": {g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]},
        "SQS queue": set(aws.client("sqs").list_queues().get("QueueUrls", [])),
        "CloudWatch alarm": {a["AlarmName"] for a in aws.client("cloudwatch").describe_alarms()["MetricAlarms"]},
        "IoT domain configuration": {
            d["domainConfigurationName"]
            for d in aws.client("iot").list_domain_configurations()["domainConfigurations"]
            # IoT's own (iot:Data-ATS...) are the account's, not a stage's
            if not d["domainConfigurationName"].startswith("iot:")
        },
    }


def observe(aws: LocalAws, function: str, config: dict, stage: str | None = None) -> dict:
    """What the emulator holds for the stage, gathered once, in plain data the checks compare."""
    from botocore.exceptions import ClientError

    lam = aws.client("lambda")
    observed: dict = {"function": None, "policy": [], "topics": [], "subscriptions": [], "rules": {}}
    try:
        observed["function"] = lam.get_function(FunctionName=function)["Configuration"]
    except ClientError:
        return observed
    observed["versions"] = [v["Version"] for v in lam.list_versions_by_function(FunctionName=function)["Versions"]]
    try:
        observed["policy"] = json.loads(lam.get_policy(FunctionName=function)["Policy"])["Statement"]
    except ClientError:
        observed["policy"] = []
    sns = aws.client("sns")
    observed["topics"] = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    observed["subscriptions"] = sns.list_subscriptions()["Subscriptions"]
    events = aws.client("events")
    function_arn = observed["function"]["FunctionArn"]
    for rule in events.list_rules()["Rules"]:
        # Zappa prefixes its rules with the function's name, or a hash of it when the name is long.
        targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        if rule["Name"].startswith(f"{function}-") or function_arn in [t["Arn"] for t in targets]:
            observed["rules"][rule["Name"]] = {**rule, "Targets": targets}
    cfn = aws.client("cloudformation")
    try:
        stack = cfn.describe_stacks(StackName=function)["Stacks"][0]
        resources = cfn.list_stack_resources(StackName=function)["StackResourceSummaries"]
        observed["stack"] = {"status": stack["StackStatus"], "resources": resources}
    except ClientError:
        observed["stack"] = None
    apigw = aws.client("apigateway")
    api = next((a for a in apigw.get_rest_apis()["items"] if a["name"] == function), None)
    if api:
        api["stages"] = [s["stageName"] for s in apigw.get_stages(restApiId=api["id"])["item"]]
        api["resources"] = apigw.get_resources(restApiId=api["id"])["items"]
        api["deployments"] = len(apigw.get_deployments(restApiId=api["id"])["items"])
    observed["rest_api"] = api
    observed["http_api"] = next(
        (a for a in aws.client("apigatewayv2").get_apis()["Items"] if a["Name"] == function), None
    )
    name = role_name(config, function)
    observed["role"] = None
    if name:
        iam = aws.client("iam")
        try:
            role = iam.get_role(RoleName=name)["Role"]
            role["InlinePolicies"] = iam.list_role_policies(RoleName=name)["PolicyNames"]
            role["PolicyDocuments"] = {
                policy: iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                for policy in role["InlinePolicies"]
            }
            observed["role"] = role
        except ClientError:
            pass
    if stage:
        observed["stage_aws"] = observe_stage_aws(aws, stage_aws.stage_aws(config, stage))
    return observed


def observe_stage_aws(aws: LocalAws, names: stage_aws.StageAws) -> dict:
    """What tools/stage_aws.py made that moto holds (the IoT authorizer itself moto does not implement)."""
    from botocore.exceptions import ClientError

    lam, iot, sqs = aws.client("lambda"), aws.client("iot"), aws.client("sqs")
    found: dict = {"permission": None, "domain": None, "invoke_config": None, "queue": None}
    found["alarms"] = {
        alarm["AlarmName"]: alarm
        for alarm in aws.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{names.function}-")["MetricAlarms"]
    }
    try:
        statements = json.loads(lam.get_policy(FunctionName=names.function)["Policy"])["Statement"]
        found["permission"] = next((s for s in statements if s.get("Sid") == stage_aws.PERMISSION_SID), None)
    except ClientError:
        pass
    for key, call in (
        ("domain", lambda: iot.describe_domain_configuration(domainConfigurationName=names.domain_configuration)),
        ("invoke_config", lambda: lam.get_function_event_invoke_config(FunctionName=names.function)),
        (
            "queue",
            lambda: sqs.get_queue_attributes(
                QueueUrl=sqs.get_queue_url(QueueName=names.failure_queue)["QueueUrl"], AttributeNames=["All"]
            )["Attributes"],
        ),
    ):
        with contextlib.suppress(ClientError):
            found[key] = call()
    return found


# ------------------------------------------------------------------------------
# Checks: observed against declared (pure functions of plain data)
# ------------------------------------------------------------------------------
def _secrets(variables: dict) -> list[str]:
    return sorted(k for k in variables if SECRETISH.search(k))


def _principal_grants(policy: list[dict], service: str, source_arn: str) -> bool:
    for statement in policy:
        principal = statement.get("Principal", {})
        principal = principal.get("Service") if isinstance(principal, dict) else principal
        condition = statement.get("Condition", {}).get("ArnLike", {}).get("AWS:SourceArn")
        if principal == service and condition == source_arn and statement.get("Effect") == "Allow":
            return True
    return False


def check_function(config: dict, function: str, observed: dict) -> list[Check]:
    fn = observed.get("function")
    if fn is None:
        return [Check("lambda function", False, f"{function} does not exist")]
    wanted = {
        "Handler": config.get("lambda_handler", "handler.lambda_handler"),
        "Runtime": config.get("runtime"),
        "MemorySize": config.get("memory_size", 512),
        "Timeout": config.get("timeout_seconds", 30),
        "Architectures": [config.get("architecture", "x86_64")],
    }
    problems = [f"{k} is {fn.get(k)!r}, settings say {v!r}" for k, v in wanted.items() if fn.get(k) != v]
    vpc_wanted = config.get("vpc_config") or {}
    vpc = fn.get("VpcConfig") or {}
    for key in ("SubnetIds", "SecurityGroupIds"):
        if sorted(vpc.get(key) or []) != sorted(vpc_wanted.get(key) or []):
            problems.append(f"VpcConfig.{key} is {vpc.get(key) or []}, settings say {vpc_wanted.get(key) or []}")
    env = (fn.get("Environment") or {}).get("Variables") or {}
    if env != (config.get("aws_environment_variables") or {}):
        problems.append(f"environment {sorted(env)} differs from aws_environment_variables")
    if _secrets(env):
        problems.append(f"secret-looking variables in the function's environment: {_secrets(env)}")
    vpc_text = f"VPC {vpc_wanted.get('SubnetIds')}" if vpc_wanted else "no VPC"
    summary = (
        f"{wanted['Handler']}, {wanted['Runtime']}, {wanted['MemorySize']} MB, {wanted['Timeout']} s, "
        f"{wanted['Architectures'][0]}, {vpc_text}, environment {sorted(env) or 'empty'}"
    )
    return [Check("lambda function", not problems, "; ".join(problems) or summary)]


def check_package(config: dict, stage: str, observed: dict, package: dict | None) -> list[Check]:
    """The zip Zappa uploaded: its generated settings, no secret in them, nothing that was to be excluded."""
    if package is None:
        return [Check("package", False, "Zappa's zip was not found after deploy")]
    baked = package["settings"]
    problems = []
    declared_env = config.get("environment_variables") or {}
    # Zappa adds the stage's region to the variables it bakes in.
    baked_env = dict(baked.get("ENVIRONMENT_VARIABLES") or {})
    if baked_env.pop("AWS_REGION", None) != config.get("aws_region", "us-east-1"):
        problems.append("AWS_REGION is not the stage's region")
    if baked_env != declared_env:
        problems.append(f"ENVIRONMENT_VARIABLES {baked_env} != environment_variables {declared_env}")
    if _secrets(baked_env):
        problems.append(f"secret-looking variables baked into the zip: {_secrets(baked_env)}")
    code_sha = (observed.get("function") or {}).get("CodeSha256")
    if code_sha != package["sha256"]:
        problems.append("the function's code is not this zip (CodeSha256 differs)")
    if baked.get("API_STAGE") != stage:
        problems.append(f"API_STAGE is {baked.get('API_STAGE')!r}")
    if baked.get("REMOTE_ENV") != config.get("remote_env"):
        problems.append(f"REMOTE_ENV is {baked.get('REMOTE_ENV')!r}, settings say {config.get('remote_env')!r}")
    if baked.get("DJANGO_SETTINGS") != config.get("django_settings"):
        problems.append(f"DJANGO_SETTINGS is {baked.get('DJANGO_SETTINGS')!r}")
    handler_module = config.get("lambda_handler", "handler.lambda_handler").rsplit(".", 1)[0]
    if handler_module.replace(".", "/") + ".py" not in package["names"]:
        problems.append(f"the handler module {handler_module} is not in the zip")
    tops = {name.split("/", 1)[0] for name in package["names"]}
    unexpected = sorted(tops - package["allowed"])
    if unexpected:
        problems.append(f"neither a runtime requirement nor a runtime folder of Cue's: {unexpected}")
    leaked = sorted(e for e in config.get("exclude", []) if "*" not in e and e in tops)
    if leaked:
        problems.append(f"excluded but packaged: {leaked}")
    if package["unzipped"] > LAMBDA_UNZIPPED_LIMIT:
        problems.append(f"{package['unzipped'] / 2**20:.0f} MB unzipped, over Lambda's 250 MB")
    summary = (
        f"{package['zipped'] / 2**20:.1f} MB zipped, {package['unzipped'] / 2**20:.0f} MB unzipped; "
        f"environment {sorted(declared_env)}, remote_env {config.get('remote_env')}"
    )
    return [Check("package", not problems, "; ".join(problems) or summary)]


def check_async_topic(config: dict, function: str, observed: dict) -> list[Check]:
    if config.get("async_source") != "sns" or not config.get("async_resources", True):
        return []
    fn = observed.get("function") or {}
    function_arn = fn.get("FunctionArn", "")
    topic = next((t for t in observed["topics"] if t.rsplit(":", 1)[-1] == f"{function}-zappa-async"), None)
    if topic is None:
        return [Check("async SNS topic", False, f"{function}-zappa-async does not exist")]
    subscribed = any(
        s["TopicArn"] == topic and s["Protocol"] == "lambda" and s["Endpoint"] == function_arn
        for s in observed["subscriptions"]
    )
    granted = _principal_grants(observed["policy"], "sns.amazonaws.com", topic)
    problems = []
    if not subscribed:
        problems.append("the function is not subscribed to it")
    if not granted:
        problems.append("the function's policy does not let SNS invoke it from this topic")
    return [Check("async SNS topic", not problems, "; ".join(problems) or f"{topic}, function subscribed")]


def check_rules(config: dict, function: str, observed: dict) -> list[Check]:
    wanted = stage_rules(config, function)
    function_arn = (observed.get("function") or {}).get("FunctionArn", "")
    checks = []
    for rule in wanted:
        got = observed["rules"].get(rule["name"])
        if got is None:
            checks.append(Check(f"rule {rule['name']}", False, "missing"))
            continue
        problems = []
        if got.get("ScheduleExpression") != rule["expression"]:
            problems.append(f"expression {got.get('ScheduleExpression')!r}, declared {rule['expression']!r}")
        if got.get("State") != "ENABLED":
            problems.append(f"state {got.get('State')}")
        if function_arn not in [t["Arn"] for t in got["Targets"]]:
            problems.append("does not target the function")
        if not _principal_grants(observed["policy"], "events.amazonaws.com", got["Arn"]):
            problems.append("the function's policy does not let EventBridge invoke it")
        checks.append(Check(f"rule {rule['name']}", not problems, "; ".join(problems) or rule["expression"]))
    extra = sorted(set(observed["rules"]) - {r["name"] for r in wanted})
    if extra:
        checks.append(Check("no undeclared rules", False, f"undeclared: {extra}"))
    return checks


def check_api(config: dict, stage: str, function: str, observed: dict) -> list[Check]:
    if not config.get("apigateway_enabled", config.get("use_apigateway", True)):
        return []
    stack = observed.get("stack")
    checks = [
        Check(
            "CloudFormation stack",
            bool(stack) and stack["status"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE"),
            f"{function}: {stack['status'] if stack else 'missing'}",
        )
    ]
    if config.get("apigateway_version", "v1") == "v2":
        api = observed.get("http_api")
        checks.append(Check("API Gateway (HTTP API)", api is not None, api["ApiId"] if api else f"{function} missing"))
        return checks
    api = observed.get("rest_api")
    if api is None:
        return [*checks, Check("API Gateway (REST API)", False, f"no REST API named {function}")]
    function_arn = (observed.get("function") or {}).get("FunctionArn", "@")
    proxied = {
        r["path"]
        for r in api["resources"]
        for m in (r.get("resourceMethods") or {}).values()
        if m.get("httpMethod") == "ANY"
        and (m.get("methodIntegration") or {}).get("type") == "AWS_PROXY"
        and function_arn in (m.get("methodIntegration") or {}).get("uri", "")
    }
    problems = []
    stack_api = [r["PhysicalResourceId"] for r in (stack or {}).get("resources", []) if r["LogicalResourceId"] == "Api"]
    if stack_api != [api["id"]]:
        problems.append("the REST API is not the stack's")
    if stage not in api["stages"]:
        problems.append(f"no stage {stage!r} (stages: {api['stages']})")
    if proxied != {"/", "/{proxy+}"}:
        problems.append(f"ANY proxied to the function on {sorted(proxied)}, wanted / and /{{proxy+}}")
    # moto records Zappa's `add /binaryMediaTypes/*~1*` patch as [''] where AWS records ['*/*']: check it was added.
    if config.get("binary_support", True) and not api.get("binaryMediaTypes"):
        problems.append("binary support was not added")
    detail = f"{api['id']} stage {stage}, ANY / and /{{proxy+}} -> {function}"
    return [*checks, Check("API Gateway (REST API)", not problems, "; ".join(problems) or detail)]


def check_role(config: dict, stage: str, function: str, observed: dict) -> list[Check]:
    fn = observed.get("function") or {}
    if config.get("role_arn"):
        ok = fn.get("Role") == config["role_arn"]
        return [Check("IAM role", ok, f"function runs as {fn.get('Role')}")]
    role = observed.get("role")
    name = role_name(config, function)
    if role is None:
        return [Check("IAM role", False, f"{name} does not exist")]
    trust = json.dumps(role.get("AssumeRolePolicyDocument", {}))
    problems = []
    if fn.get("Role") != role["Arn"]:
        problems.append(f"the function runs as {fn.get('Role')}")
    if "lambda.amazonaws.com" not in trust:
        problems.append("Lambda may not assume it")
    if config.get("manage_roles", True) and "zappa-permissions" not in role["InlinePolicies"]:
        problems.append("no zappa-permissions policy")
    return [
        Check("IAM role", not problems, "; ".join(problems) or f"{name}, trusted by Lambda"),
        *check_role_policy(config, stage, role),
    ]


def check_role_policy(config: dict, stage: str, role: dict) -> list[Check]:
    """The role's zappa-permissions is exactly the stage's least-privilege policy (tools/iam.py), nothing wider."""
    if not config.get("manage_roles", True):
        return []
    if not config.get("attach_policy"):
        return [Check("IAM role policy", False, "no attach_policy: Zappa's default allows s3:*, sns:* on everything")]
    deployed = (role.get("PolicyDocuments") or {}).get("zappa-permissions")
    if deployed is None:
        return [Check("IAM role policy", False, "no zappa-permissions policy to read")]
    if isinstance(deployed, str):
        deployed = json.loads(deployed)
    problems = iam_policies.policy_problems(deployed, config, stage)
    expected = iam_policies.expected_policy(config, stage)
    if _canonical(deployed) != _canonical(expected):
        problems.append(f"differs from {config['attach_policy']} (python -m tools.iam): {json.dumps(deployed)[:400]}")
    statements = [statement.get("Sid", "?") for statement in deployed.get("Statement", [])]
    return [Check("IAM role policy", not problems, "; ".join(problems) or f"least privilege: {statements}")]


def _canonical(document: dict) -> str:
    def sort(value):
        if isinstance(value, dict):
            return {key: sort(item) for key, item in sorted(value.items())}
        if isinstance(value, list):
            return sorted((sort(item) for item in value), key=json.dumps)
        return value

    return json.dumps(sort(document), sort_keys=True)


def check_stage_aws(config: dict, stage: str, observed: dict) -> list[Check]:
    """tools/stage_aws.py's parts: IoT may invoke the function from the stage's authorizer, the domain
    configuration defaults to that authorizer, and failed async invocations go to the stage's queue."""
    found = observed.get("stage_aws")
    if found is None:
        return [
            Check("realtime authorizer wiring", False, "not observed"),
            Check("failure destination", False, "not observed"),
        ]
    names = stage_aws.stage_aws(config, stage)
    account = ((observed.get("function") or {}).get("FunctionArn") or "::::?").split(":")[4]
    problems = []
    if not stage_aws.permission_grants(found["permission"], names.authorizer_arn(account)):
        problems.append(f"the function's policy does not let IoT invoke it from {names.authorizer_arn(account)}")
    domain = found["domain"] or {}
    if not domain:
        problems.append(f"no IoT domain configuration {names.domain_configuration}")
    elif domain.get("authorizerConfig") != stage_aws.domain_authorizer_config(names):
        problems.append(f"domain configuration's authorizer is {domain.get('authorizerConfig')}")
    elif domain.get("domainConfigurationStatus") != "ENABLED" or domain.get("serviceType") != "DATA":
        problems.append(
            f"domain configuration is {domain.get('domainConfigurationStatus')} {domain.get('serviceType')}"
        )
    realtime = Check(
        "realtime authorizer wiring",
        not problems,
        "; ".join(problems)
        or f"IoT may invoke {names.function} from {names.authorizer}; {names.domain_configuration} defaults to it",
    )
    problems = []
    wanted = stage_aws.invoke_config(names, account)
    got = found["invoke_config"] or {}
    if {key: got.get(key) for key in wanted} != wanted:
        problems.append(
            f"asynchronous-invocation config is { ({key: got.get(key) for key in wanted}) }, wanted {wanted}"
        )
    queue = found["queue"]
    if queue is None:
        problems.append(f"no SQS queue {names.failure_queue}")
    elif queue.get("QueueArn") != names.failure_queue_arn(account):
        problems.append(f"queue ARN {queue.get('QueueArn')}")
    failures = Check(
        "failure destination",
        not problems,
        "; ".join(problems)
        or f"{wanted['MaximumRetryAttempts']} retries, {wanted['MaximumEventAgeInSeconds']} s, on failure -> "
        f"{names.failure_queue}",
    )
    return [realtime, failures, check_alarms(names, account, found)]


def check_alarms(names: stage_aws.StageAws, account: str, found: dict) -> Check:
    """Every alarm tools/stage_aws.py declares, as declared: on the stage's function, topic, queue or Stage
    dimension, notifying the stage's alarm topic."""
    wanted = stage_aws.alarm_definitions(names, account)
    got = found.get("alarms") or {}
    problems = [
        f"{name}: {', '.join(differing)}"
        for name, definition in wanted.items()
        if (differing := stage_aws.alarm_differences(definition, got.get(name)))
    ]
    extra = sorted(set(got) - set(wanted))
    if extra:
        problems.append(f"undeclared: {extra}")
    return Check(
        "alarms",
        not problems,
        "; ".join(problems)
        or f"{len(wanted)} alarms on {names.function}, its topic, queue and metrics -> {names.alarm_topic}",
    )


def check_deployment(config: dict, stage: str, function: str, observed: dict, package: dict | None) -> list[Check]:
    return [
        *check_function(config, function, observed),
        *check_package(config, stage, observed, package),
        *check_async_topic(config, function, observed),
        *check_rules(config, function, observed),
        *check_api(config, stage, function, observed),
        *check_role(config, stage, function, observed),
        *check_stage_aws(config, stage, observed),
    ]


def kept_by_design(config: dict, function: str) -> dict[str, set[str]]:
    """What `zappa undeploy` leaves on purpose: the execution role (reused by the next deploy), the bucket."""
    kept: dict[str, set[str]] = {"S3 bucket": {config.get("s3_bucket", "")}}
    name = role_name(config, function)
    if name:
        kept["IAM role"] = {name}
    return kept


def stack_deleted_by_moto(aws: LocalAws, function: str) -> dict[str, set[str]]:
    """moto deletes a stack without its AWS::ApiGateway::RestApi (AWS deletes it with the stack): excuse only that."""
    stacks = aws.client("cloudformation").list_stacks()["StackSummaries"]
    deleted = any(s["StackName"] == function and s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)
    return {"REST API": {function}} if deleted else {}


def check_undeployment(
    before: dict[str, set[str]], after: dict[str, set[str]], kept: dict, moto_keeps: dict | None = None
) -> list[Check]:
    excused = {kind: kept.get(kind, set()) | (moto_keeps or {}).get(kind, set()) for kind in after}
    left = {kind: sorted(after[kind] - before.get(kind, set()) - excused[kind]) for kind in after}
    left = {kind: names for kind, names in left.items() if names}
    kept_now = sorted(n for kind, names in kept.items() for n in names if n in after.get(kind, set()))
    detail = "; ".join(f"{kind}: {names}" for kind, names in left.items())
    return [Check("nothing left", not left, detail or f"kept by design: {kept_now or 'nothing'}")]


# ------------------------------------------------------------------------------
# Running Zappa
# ------------------------------------------------------------------------------
def virtualenv(venv: Path | None = None) -> Path:
    """The virtualenv Zappa packages: the given one, or the runtime-only one bin/package builds from."""
    venv = venv or runtime_venv()
    if not (venv / "pyvenv.cfg").exists() or not (venv / "bin" / "zappa").exists():
        raise RuntimeError(f"{venv} is not a virtualenv with Zappa installed; Zappa packages a virtualenv")
    return venv


def zappa_env(aws: LocalAws, guard: OutsideGuard, venv: Path | None = None) -> dict[str, str]:
    venv = virtualenv(venv)
    env = clean_aws_environment(dict(os.environ))
    env.update(aws.env())
    env.update(guard.env())
    env.update({"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"})
    if memory_tmpdir():
        env["TMPDIR"] = memory_tmpdir()
    return env


def run_zappa(args: list[str], env: dict, root: Path = ROOT) -> Step:
    command = [str(Path(env["VIRTUAL_ENV"]) / "bin" / "zappa"), *args]
    started = time.monotonic()
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    return Step(
        command=["zappa", *args],
        returncode=result.returncode,
        seconds=time.monotonic() - started,
        output=result.stdout + result.stderr,
    )


def take_package(function: str, since: float, root: Path, into: Path) -> Path | None:
    """Move the zip the last Zappa command left in the project folder (delete_local_zip off) out of it."""
    pattern = re.compile(rf"^{re.escape(function)}-\d+\.zip$")
    zips = [p for p in root.iterdir() if pattern.match(p.name) and p.stat().st_mtime >= since - 1]
    if not zips:
        return None
    newest = max(zips, key=lambda p: p.stat().st_mtime)
    for other in zips:
        if other != newest:
            other.unlink()
    return Path(newest.replace(into / newest.name))


def _requirements(path: Path) -> list:
    from packaging.requirements import Requirement

    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def development_only_modules(requirements: Path = ROOT / "requirements.txt") -> dict[str, str]:
    """Top-level modules of installed distributions outside the runtime requirements' closure -> distribution."""
    import importlib.metadata as metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    runtime: set[str] = set()
    pending = [(r, {""}) for r in _requirements(requirements)]
    while pending:
        requirement, extras = pending.pop()
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras):
            continue
        name = canonicalize_name(requirement.name)
        if name in runtime:
            continue
        runtime.add(name)
        try:
            requires = metadata.distribution(requirement.name).requires or []
        except metadata.PackageNotFoundError:
            continue
        pending += [(Requirement(r), set(requirement.extras) | {""}) for r in requires]
    modules = {}
    for dist in metadata.distributions():
        name = canonicalize_name(dist.metadata["Name"])
        if name in runtime:
            continue
        top_level = (dist.read_text("top_level.txt") or "").split() or [
            f.parts[0].removesuffix(".py") for f in dist.files or [] if not f.parts[0].endswith((".dist-info", ".data"))
        ]
        modules.update({module: name for module in top_level if module not in ("..", "bin", "__pycache__")})
    return modules


def read_package(path: Path | None, allowed: set[str] | frozenset[str] = frozenset()) -> dict | None:
    if path is None:
        return None
    digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        source = zf.read("zappa_settings.py").decode()
        unzipped = sum(i.file_size for i in zf.infolist())
        sizes: dict[str, int] = {}
        for info in zf.infolist():
            top = info.filename.split("/", 1)[0]
            sizes[top] = sizes.get(top, 0) + info.file_size
    baked: dict = {}
    exec(compile(source, "zappa_settings.py", "exec"), baked)  # noqa: S102 - Zappa's own generated settings
    return {
        "names": set(names),
        "settings": baked,
        "zipped": path.stat().st_size,
        "sha256": digest,
        "unzipped": unzipped,
        "sizes": sizes,
        "allowed": set(allowed),
    }


# ------------------------------------------------------------------------------
# One stage, from deploy to undeploy
# ------------------------------------------------------------------------------
def rehearse(
    stage: str,
    *,
    settings_path: Path = SETTINGS,
    project_dir: Path = ROOT,
    update: bool = False,
    aws: LocalAws | None = None,
    venv: Path | None = None,
) -> StageReport:
    """Deploy, check, (update, check,) undeploy, check; on a fresh moto server unless one is given."""
    config = stage_files.resolved(json.loads(settings_path.read_text()), stage)
    function = stage_files.function_name(config, stage)
    report = StageReport(stage=stage, function=function)
    own_aws = aws is None
    aws = aws or LocalAws(config.get("aws_region", "us-east-1")).start()
    try:
        with tempfile.TemporaryDirectory(prefix=f"rehearsal-{stage}-") as tmp, OutsideGuard() as guard:
            work = Path(tmp)
            overlay = stage_files.write_overlay(settings_path, stage, REHEARSAL_OVERRIDES, work)
            env = zappa_env(aws, guard, venv)
            # Zappa zips the folder it runs in: only Cue's runtime folders, as bin/package builds from.
            root = work / "project"
            runtime_tree(project_dir, root)
            before = inventory(aws)
            _deploy_and_check(report, config, overlay, env, root, work, aws)
            if update and report.steps["deploy"].returncode == 0:
                _update_and_check(report, config, overlay, env, root, work, aws)
            if "deploy" in report.steps and report.steps["deploy"].returncode == 0:
                _stage_aws_step(report, config, aws, "remove")
                step = report.steps["undeploy"] = run_zappa(["undeploy", stage, "-s", str(overlay), "--yes"], env, root)
                report.checks.append(Check("zappa undeploy", step.returncode == 0, _tail(step)))
                moto_keeps = stack_deleted_by_moto(aws, function)
                after = inventory(aws)
                report.checks += check_undeployment(before, after, kept_by_design(config, function), moto_keeps)
                if any(n in after.get(kind, set()) for kind, names in moto_keeps.items() for n in names):
                    report.notes.append(
                        f"the REST API {function} outlives its deleted stack only in moto (its CloudFormation does "
                        "not delete AWS::ApiGateway::RestApi); on AWS it goes with the stack, checked DELETE_COMPLETE"
                    )
            report.outside_attempts = list(guard.attempts)
    finally:
        if own_aws:
            aws.stop()
    touched = [a for a in report.outside_attempts if "amazonaws.com" in a]
    report.checks.append(
        Check(
            "no AWS endpoint contacted",
            not touched,
            f"tried: {touched}" if touched else f"refused outside connections: {sorted(set(report.outside_attempts))}",
        )
    )
    return report


def _deploy_and_check(report, config, overlay, env, root, work, aws) -> None:
    since = time.time()
    step = report.steps["deploy"] = run_zappa(["deploy", report.stage, "-s", str(overlay)], env, root)
    allowed = allowed_top_levels(Path(env["VIRTUAL_ENV"]), RUNTIME_PATHS)
    package = read_package(take_package(report.function, since, root, work), allowed)
    report.checks.append(Check("zappa deploy", step.returncode == 0, _tail(step)))
    if step.returncode != 0:
        return
    if package:
        report.notes.append(development_only_note(package))
    _stage_aws_step(report, config, aws, "create")
    if "Problem creating permission" in step.output:
        report.notes.append(
            "Zappa logs 'Problem creating permission' because moto answers AddPermission with 200 where AWS "
            "answers 201; the permissions are there (checked on the function's policy)."
        )
    observed = observe(aws, report.function, config, report.stage)
    report.checks += check_deployment(config, report.stage, report.function, observed, package)


def _update_and_check(report, config, overlay, env, root, work, aws) -> None:
    before = observe(aws, report.function, config, report.stage)
    since = time.time()
    step = report.steps["update"] = run_zappa(["update", report.stage, "-s", str(overlay)], env, root)
    allowed = allowed_top_levels(Path(env["VIRTUAL_ENV"]), RUNTIME_PATHS)
    package = read_package(take_package(report.function, since, root, work), allowed)
    after = observe(aws, report.function, config, report.stage)
    if step.returncode == 0:
        report.checks.append(Check("zappa update", True, "completed"))
        report.checks += [
            Check(f"after update: {c.name}", c.ok, c.detail)
            for c in check_deployment(config, report.stage, report.function, after, package)
        ]
        return
    stopped_at_moto = UPDATE_STOP in step.output and "(404)" in step.output
    report.checks.append(
        Check(
            "zappa update (up to ListFunctionUrlConfigs)",
            stopped_at_moto,
            "stopped at ListFunctionUrlConfigs (404 from moto), as expected" if stopped_at_moto else _tail(step),
        )
    )
    if not stopped_at_moto:
        return
    report.notes.append(UPDATE_NOT_REHEARSED)
    published = len(after.get("versions", [])) > len(before.get("versions", []))
    report.checks.append(Check("update: a new version published", published, f"versions {after.get('versions')}"))
    report.checks += [
        Check(f"update: {c.name}", c.ok, c.detail)
        for c in [*check_function(config, report.function, after), *check_package(config, report.stage, after, package)]
    ]
    deployments = [(s.get("rest_api") or {}).get("deployments", 0) for s in (before, after)]
    if config.get("apigateway_version", "v1") == "v1" and config.get("apigateway_enabled", True):
        report.checks.append(
            Check("update: API Gateway redeployed", deployments[1] > deployments[0], f"deployments {deployments}")
        )


# What moto 5.2 does not implement of tools/stage_aws.py, and where it is covered instead.
AUTHORIZER_NOT_REHEARSED = (
    "the IoT authorizer itself is not rehearsed: moto 5.2 implements no Create/Describe/Update/DeleteAuthorizer "
    "(tests/ops/test_stage_aws.py checks those requests against IoT's service model with botocore's Stubber)"
)
REHEARSED_PARTS = tuple(part for part in stage_aws.PARTS if part != "authorizer")


def _stage_aws_step(report: StageReport, config: dict, aws: LocalAws, action: str) -> None:
    """`python -m tools.stage_aws STAGE create|remove` (what moto implements of it), run twice: the second changes
    nothing."""
    from botocore.exceptions import BotoCoreError, ClientError

    names = stage_aws.stage_aws(config, report.stage)
    services = ("lambda", "iot", "sqs", "sts", "cloudwatch", "sns")
    clients = stage_aws.Clients(aws.region, overrides={s: aws.client(s) for s in services})
    try:
        first = stage_aws.apply(names, action, clients, parts=REHEARSED_PARTS)
        second = stage_aws.apply(names, action, clients, parts=REHEARSED_PARTS)
    except (BotoCoreError, ClientError, stage_aws.SetupError) as exc:
        report.checks.append(Check(f"tools.stage_aws {action}", False, f"{type(exc).__name__}: {exc}"))
        return
    waiting = [c for c in first if isinstance(c, stage_aws.Waiting)]
    report.checks.append(
        Check(f"tools.stage_aws {action}", bool(first) and not waiting, "; ".join(first) or "changed nothing")
    )
    report.checks.append(
        Check(f"tools.stage_aws {action} again: no changes", not second, "; ".join(second) or "changed nothing")
    )
    if action == "create":
        report.notes.append(AUTHORIZER_NOT_REHEARSED)


def development_only_note(package: dict) -> str:
    dev = development_only_modules()
    shipped = sorted(((size, top, dev[top]) for top, size in package["sizes"].items() if top in dev), reverse=True)
    if not shipped:
        return "the zip carries runtime requirements only"
    total = sum(size for size, _, _ in shipped) / 2**20
    listed = ", ".join(f"{top} ({dist}, {size / 2**20:.1f} MB)" for size, top, dist in shipped[:8])
    return (
        f"the zip carries {total:.0f} MB of development-only packages from the virtualenv it was built in "
        f"(not excluded in the settings): {listed}{' ...' if len(shipped) > 8 else ''}; "
        "a deploy from a runtime-only virtualenv (README) leaves them out"
    )


def _tail(step: Step, lines: int = 12) -> str:
    if step.returncode == 0:
        return f"{step.seconds:.1f} s"
    return f"exit {step.returncode} after {step.seconds:.1f} s:\n" + "\n".join(step.output.splitlines()[-lines:])


# ------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------
def print_report(report: StageReport, out=sys.stdout) -> None:
    out.write(f"\n== {report.stage} ({report.function}) ==\n")
    for name, step in report.steps.items():
        out.write(f"  {name:<9} {step.seconds:6.1f} s  exit {step.returncode}\n")
    for check in report.checks:
        mark = "ok  " if check.ok else "FAIL"
        detail = check.detail.replace("\n", "\n        ")
        out.write(f"  {mark} {check.name}: {detail}\n")
    for note in report.notes:
        out.write(f"  note: {note}\n")
    out.write(f"  {'rehearsed' if report.ok else 'FAILED'}\n")


def main(argv: list[str] | None = None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="bin/rehearse-deploy", description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help="stages to rehearse (default: every deployable stage)")
    parser.add_argument("--all", action="store_true", help="every stage, feature-branch overlays included")
    parser.add_argument("--update", action="store_true", help="also run `zappa update` after deploy")
    parser.add_argument("-s", "--settings", type=Path, default=SETTINGS, help="zappa settings file")
    parser.add_argument("--venv", type=Path, help="virtualenv to package (default: the runtime-only one, cached)")
    args = parser.parse_args(argv)
    known = dict(discover_stages(args.settings, ROOT))
    if args.stages and not args.all:
        unknown = [s for s in args.stages if s not in known and s not in json.loads(args.settings.read_text())]
        if unknown:
            parser.error(f"unknown stage(s) {unknown}; known: {sorted(known)}")
        chosen = [(s, known.get(s, args.settings)) for s in args.stages]
    else:
        chosen = list(known.items())
    failed = []
    with LocalAws() as aws:
        for stage, path in chosen:
            aws.reset()
            report = rehearse(stage, settings_path=path, update=args.update, aws=aws, venv=args.venv)
            print_report(report, out)
            if not report.ok:
                failed.append(stage)
    out.write(
        f"\n{len(chosen) - len(failed)} of {len(chosen)} stage(s) rehearsed"
        + (f"; failed: {failed}\n" if failed else "\n")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
