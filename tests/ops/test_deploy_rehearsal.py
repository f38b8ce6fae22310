"""Deploy rehearsal: the real `zappa deploy/update/undeploy` against moto's server, and the checks it makes."""

import json
import shutil

import pytest
import requests

from tools import iam, rehearsal, stage_aws, stages
from tools.local_aws import OutsideGuard
from tools.schedules import stage_rules

SETTINGS = json.loads(rehearsal.SETTINGS.read_text())
ARN = "arn:aws:lambda:us-east-1:123456789012:function:cue-production"
TOPIC = "arn:aws:sns:us-east-1:123456789012:cue-production-zappa-async"
FAILURES = "arn:aws:sqs:us-east-1:123456789012:cue-production-async-failures"


def production() -> dict:
    return stages.resolved(SETTINGS, "production")


def passing_observation(config: dict, function: str = "cue-production") -> tuple[dict, dict]:
    """What the emulator would hold after a good deploy of `config`, and the zip Zappa would have built."""
    rules = {}
    policy = [_grant("sns.amazonaws.com", TOPIC)]
    for rule in stage_rules(config, function):
        arn = f"arn:aws:events:us-east-1:123456789012:rule/{rule['name']}"
        rules[rule["name"]] = {
            "Name": rule["name"],
            "Arn": arn,
            "ScheduleExpression": rule["expression"],
            "State": "ENABLED",
            "Targets": [{"Arn": ARN}],
        }
        policy.append(_grant("events.amazonaws.com", arn))
    observed = {
        "function": {
            "FunctionArn": ARN,
            "Handler": config["lambda_handler"],
            "Runtime": config["runtime"],
            "MemorySize": config["memory_size"],
            "Timeout": config["timeout_seconds"],
            "Architectures": [config["architecture"]],
            "Role": f"arn:aws:iam::123456789012:role/{function}-ZappaLambdaExecutionRole",
            "CodeSha256": "abc=",
        },
        "versions": ["$LATEST", "1"],
        "policy": policy,
        "topics": [TOPIC],
        "subscriptions": [{"TopicArn": TOPIC, "Protocol": "lambda", "Endpoint": ARN}],
        "rules": rules,
        "stack": {"status": "CREATE_COMPLETE", "resources": [{"LogicalResourceId": "Api", "PhysicalResourceId": "a1"}]},
        "rest_api": {
            "id": "a1",
            "stages": ["production"],
            "binaryMediaTypes": ["*/*"],
            "deployments": 1,
            "resources": [{"path": p, "resourceMethods": {"ANY": _proxy_to(ARN)}} for p in ("/", "/{proxy+}")],
        },
        "role": {
            "Arn": f"arn:aws:iam::123456789012:role/{function}-ZappaLambdaExecutionRole",
            "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": ["lambda.amazonaws.com"]}}]},
            "InlinePolicies": ["zappa-permissions"],
            "PolicyDocuments": {"zappa-permissions": iam.expected_policy(config, "production")},
        },
        "stage_aws": {
            "permission": {
                "Sid": "cue-realtime-authorizer",
                **_grant("iot.amazonaws.com", "arn:aws:iot:us-east-1:123456789012:authorizer/cue-realtime-production"),
            },
            "domain": {
                "domainConfigurationName": "cue-realtime-production",
                "authorizerConfig": {
                    "defaultAuthorizerName": "cue-realtime-production",
                    "allowAuthorizerOverride": True,
                },
                "domainConfigurationStatus": "ENABLED",
                "serviceType": "DATA",
            },
            "invoke_config": {
                "FunctionArn": ARN,
                "MaximumRetryAttempts": 2,
                "MaximumEventAgeInSeconds": 3600,
                "DestinationConfig": {"OnFailure": {"Destination": FAILURES}},
            },
            "queue": {"QueueArn": FAILURES, "MessageRetentionPeriod": "1209600"},
            "alarms": stage_aws.alarm_definitions(stage_aws.stage_aws(config, "production"), "123456789012"),
        },
    }
    package = {
        "names": {"project/lambda_entry.py", "project/settings.py", "zappa_settings.py", "django/__init__.py"},
        "settings": {
            "ENVIRONMENT_VARIABLES": {**config["environment_variables"], "AWS_REGION": "us-east-1"},
            "API_STAGE": "production",
            "REMOTE_ENV": config["remote_env"],
            "DJANGO_SETTINGS": config["django_settings"],
        },
        "zipped": 40 * 2**20,
        "unzipped": 140 * 2**20,
        "sha256": "abc=",
        "sizes": {"django": 20 * 2**20},
        "allowed": {"project", "zappa_settings.py", "django", "apps", "manage.py"},
    }
    return observed, package


def _grant_role(observed: dict, actions: list[str], resource: str) -> None:
    """One more statement in the deployed role's policy."""
    statement = {"Effect": "Allow", "Action": actions, "Resource": resource}
    observed["role"]["PolicyDocuments"]["zappa-permissions"]["Statement"].append(statement)


def _grant(service: str, source_arn: str) -> dict:
    return {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "lambda:InvokeFunction",
        "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}},
    }


def _proxy_to(arn: str) -> dict:
    uri = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{arn}/invocations"
    return {"httpMethod": "ANY", "methodIntegration": {"type": "AWS_PROXY", "uri": uri}}


def failing(checks) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


# ------------------------------------------------------------------------------
# The checks, on observations made by hand
# ------------------------------------------------------------------------------
def test_a_faithful_deployment_passes_every_check():
    observed, package = passing_observation(production())
    checks = rehearsal.check_deployment(production(), "production", "cue-production", observed, package)
    assert failing(checks) == {}
    names = {c.name for c in checks}
    assert {"lambda function", "package", "async SNS topic", "API Gateway (REST API)", "IAM role"} <= names
    assert "rule cue-production-apps.tasks.jobs.sweep" in names
    assert "rule cue-production-zappa-keep-warm-handler.keep_warm_callback" in names


@pytest.mark.parametrize(
    ("change", "check", "says"),
    [
        (lambda o, p: o["function"].update(MemorySize=512), "lambda function", "MemorySize is 512"),
        (lambda o, p: o["function"].update(Handler="handler.lambda_handler"), "lambda function", "Handler"),
        (
            lambda o, p: o["function"].update(VpcConfig={"SubnetIds": ["subnet-1"], "SecurityGroupIds": []}),
            "lambda function",
            "VpcConfig.SubnetIds",
        ),
        (
            lambda o, p: o["function"].update(Environment={"Variables": {"DJANGO_SECRET_KEY": "x"}}),
            "lambda function",
            "secret-looking variables in the function's environment: ['DJANGO_SECRET_KEY']",
        ),
        (
            lambda o, p: p["settings"]["ENVIRONMENT_VARIABLES"].update(DATABASE_URL="postgres://u:p@h/db"),
            "package",
            "secret-looking variables baked into the zip: ['DATABASE_URL']",
        ),
        (
            lambda o, p: p["names"].add("tests/conftest.py"),
            "package",
            "neither a runtime requirement nor a runtime folder of Cue's: ['tests']",
        ),
        (lambda o, p: p["names"].add(".env"), "package", "neither a runtime requirement nor a runtime folder"),
        (lambda o, p: p["names"].add("boto3/__init__.py"), "package", "excluded but packaged: ['boto3']"),
        (lambda o, p: p["names"].discard("project/lambda_entry.py"), "package", "handler module"),
        (lambda o, p: p.update(sha256="other="), "package", "not this zip"),
        (lambda o, p: p["settings"].update(REMOTE_ENV=None), "package", "REMOTE_ENV is None"),
        (lambda o, p: o.update(subscriptions=[]), "async SNS topic", "not subscribed"),
        (lambda o, p: o.update(topics=[]), "async SNS topic", "does not exist"),
        (
            lambda o, p: o["rules"]["cue-production-apps.tasks.jobs.sweep"].update(
                ScheduleExpression="rate(5 minutes)"
            ),
            "rule cue-production-apps.tasks.jobs.sweep",
            "expression 'rate(5 minutes)', declared 'rate(1 minute)'",
        ),
        (
            lambda o, p: o["rules"].pop("cue-production-zappa-keep-warm-handler.keep_warm_callback"),
            "rule cue-production-zappa-keep-warm-handler.keep_warm_callback",
            "missing",
        ),
        (
            lambda o, p: o["rules"].update(stray={"Targets": [], "Arn": "x"}),
            "no undeclared rules",
            "undeclared: ['stray']",
        ),
        (lambda o, p: o["policy"].pop(), "rule cue-production-zappa-keep-warm-handler.keep_warm_callback", "policy"),
        (lambda o, p: o["rest_api"].update(stages=["dev"]), "API Gateway (REST API)", "no stage 'production'"),
        (
            lambda o, p: o["stage_aws"].update(permission=None),
            "realtime authorizer wiring",
            "does not let IoT invoke it from arn:aws:iot:us-east-1:123456789012:authorizer/cue-realtime-production",
        ),
        (
            lambda o, p: o["stage_aws"]["permission"]["Condition"]["ArnLike"].update(
                {"AWS:SourceArn": "arn:aws:iot:us-east-1:123456789012:authorizer/cue-realtime-dev"}
            ),
            "realtime authorizer wiring",
            "does not let IoT invoke it",
        ),
        (
            lambda o, p: o["stage_aws"].update(domain=None),
            "realtime authorizer wiring",
            "no IoT domain configuration cue-realtime-production",
        ),
        (
            lambda o, p: o["stage_aws"]["domain"]["authorizerConfig"].update(defaultAuthorizerName="cue-realtime-dev"),
            "realtime authorizer wiring",
            "domain configuration's authorizer",
        ),
        (
            lambda o, p: o["stage_aws"]["domain"].update(domainConfigurationStatus="DISABLED"),
            "realtime authorizer wiring",
            "domain configuration is DISABLED",
        ),
        (lambda o, p: o["stage_aws"].update(invoke_config=None), "failure destination", "asynchronous-invocation"),
        (
            lambda o, p: o["stage_aws"]["invoke_config"].update(DestinationConfig={}),
            "failure destination",
            "asynchronous-invocation config",
        ),
        (
            lambda o, p: o["stage_aws"]["invoke_config"].update(MaximumRetryAttempts=0),
            "failure destination",
            "'MaximumRetryAttempts': 0",
        ),
        (lambda o, p: o["stage_aws"].update(queue=None), "failure destination", "no SQS queue"),
        (lambda o, p: o["stage_aws"]["alarms"].pop("cue-production-dead-tasks"), "alarms", "dead-tasks: missing"),
        (
            lambda o, p: o["stage_aws"]["alarms"]["cue-production-function-errors"].update(
                Dimensions=[{"Name": "FunctionName", "Value": "cue-staging"}]
            ),
            "alarms",
            "cue-production-function-errors: Dimensions",
        ),
        (
            lambda o, p: o["stage_aws"]["alarms"]["cue-production-sns-delivery-failures"].update(
                Dimensions=[{"Name": "TopicName", "Value": "cue-staging-zappa-async"}]
            ),
            "alarms",
            "sns-delivery-failures: Dimensions",
        ),
        (
            lambda o, p: o["stage_aws"]["alarms"]["cue-production-webhook-ack-p95"].update(AlarmActions=[]),
            "alarms",
            "webhook-ack-p95: AlarmActions",
        ),
        (
            lambda o, p: o["stage_aws"]["alarms"].update({"cue-production-stray": {}}),
            "alarms",
            "undeclared: ['cue-production-stray']",
        ),
        (lambda o, p: o.pop("stage_aws"), "failure destination", "not observed"),
        (lambda o, p: o["rest_api"]["resources"].pop(), "API Gateway (REST API)", "wanted / and /{proxy+}"),
        (lambda o, p: o.update(stack=None), "CloudFormation stack", "missing"),
        (lambda o, p: o.update(role=None), "IAM role", "does not exist"),
        (lambda o, p: o["role"].update(InlinePolicies=[]), "IAM role", "no zappa-permissions policy"),
        (lambda o, p: o["role"].update(PolicyDocuments={}), "IAM role policy", "no zappa-permissions policy"),
        (lambda o, p: _grant_role(o, ["s3:*"], "*"), "IAM role policy", "wildcard actions ['s3:*']"),
        (
            lambda o, p: _grant_role(o, ["s3:GetObject"], "arn:aws:s3:::cue-config-dev/env.json"),
            "IAM role policy",
            "S3 beyond its remote_env object: ['arn:aws:s3:::cue-config-dev/env.json']",
        ),
        (lambda o, p: _grant_role(o, ["s3:GetObject"], "*"), "IAM role policy", "S3 beyond its remote_env object"),
        (
            lambda o, p: _grant_role(o, ["sns:Publish"], "arn:aws:sns:us-east-1:*:cue-dev-zappa-async"),
            "IAM role policy",
            "SNS beyond its topic",
        ),
        (
            lambda o, p: _grant_role(o, ["iot:Publish"], "arn:aws:iot:us-east-1:*:topic/cue-dev/*"),
            "IAM role policy",
            "IoT publish beyond topic/cue/*",
        ),
        (
            lambda o, p: _grant_role(o, ["sqs:SendMessage"], "arn:aws:sqs:us-east-1:*:cue-dev-async-failures"),
            "IAM role policy",
            "SQS beyond its failure queue",
        ),
        (lambda o, p: _grant_role(o, ["dynamodb:GetItem"], "*"), "IAM role policy", "['dynamodb:GetItem'] on every"),
        (
            lambda o, p: o["role"]["PolicyDocuments"]["zappa-permissions"]["Statement"].pop(),
            "IAM role policy",
            "differs from iam/production.json",
        ),
    ],
)
def test_each_difference_fails_its_check(change, check, says):
    observed, package = passing_observation(production())
    change(observed, package)
    failures = failing(rehearsal.check_deployment(production(), "production", "cue-production", observed, package))
    assert check in failures, failures
    assert says in failures[check]


def test_a_stage_on_zappas_default_role_fails_the_policy_check():
    """Without attach_policy Zappa gives the role s3:* and sns:* on everything: the dev stage could read production's
    config bucket."""
    config = {k: v for k, v in production().items() if k != "attach_policy"}
    observed, package = passing_observation(config)
    failures = failing(rehearsal.check_deployment(config, "production", "cue-production", observed, package))
    assert "no attach_policy" in failures["IAM role policy"]


def test_zappas_default_policy_is_what_the_check_refuses():
    from zappa.core import ATTACH_POLICY

    problems = iam.policy_problems(json.loads(ATTACH_POLICY), production(), "production")
    assert any("S3 beyond its remote_env object: ['arn:aws:s3:::*']" in p for p in problems), problems
    assert any("wildcard actions" in p for p in problems), problems


def test_each_stages_policy_is_committed_up_to_date_and_its_own():
    """iam/<stage>.json is what tools/iam.py generates from zappa_settings.json, and names only that stage."""
    assert iam.main(["--check"]) == 0
    for stage in ("dev", "staging", "production"):
        config = stages.resolved(SETTINGS, stage)
        assert config["attach_policy"] == f"iam/{stage}.json"
        document = json.loads((rehearsal.ROOT / config["attach_policy"]).read_text())
        assert iam.policy_problems(document, config, stage) == []
        text = json.dumps(document)
        others = [other for other in ("dev", "staging", "production") if other != stage]
        assert not [other for other in others if f"cue-config-{other}" in text or f"cue-{other}-" in text]
        assert f"arn:aws:s3:::cue-config-{stage}/env.json" in text
        root = "cue" if stage == "production" else f"cue-{stage}"
        assert f"topic/{root}/*" in text


def test_a_stage_in_a_vpc_may_manage_its_network_interfaces_and_nothing_more():
    config = {**production(), "vpc_config": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}}
    policy = iam.stage_policy(config, "production")
    assert {"Sid": "VpcNetworkInterfaces", "Effect": "Allow", "Action": iam.VPC_ACTIONS, "Resource": "*"} in (
        policy["Statement"]
    )
    assert iam.policy_problems(policy, config, "production") == []
    assert "VpcNetworkInterfaces" not in json.dumps(iam.stage_policy(production(), "production"))


def test_a_missing_function_is_one_clear_failure():
    observed, package = passing_observation(production())
    observed["function"] = None
    assert failing(rehearsal.check_function(production(), "cue-production", observed)) == {
        "lambda function": "cue-production does not exist"
    }


def test_a_stage_with_vpc_and_function_environment_is_checked_against_them():
    config = {
        **production(),
        "vpc_config": {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]},
        "aws_environment_variables": {"CUE_STAGE": "production"},
    }
    observed, _ = passing_observation(config)
    assert (
        "VpcConfig.SubnetIds"
        in failing(rehearsal.check_function(config, "cue-production", observed))["lambda function"]
    )
    observed["function"]["VpcConfig"] = {"SubnetIds": ["subnet-2", "subnet-1"], "SecurityGroupIds": ["sg-1"]}
    observed["function"]["Environment"] = {"Variables": {"CUE_STAGE": "production"}}
    assert failing(rehearsal.check_function(config, "cue-production", observed)) == {}


def test_undeploy_leaves_only_what_zappa_keeps_by_design():
    before = {"lambda function": set(), "IAM role": set(), "S3 bucket": {"cue-config-production"}, "REST API": set()}
    after = {
        "lambda function": set(),
        "IAM role": {"cue-production-ZappaLambdaExecutionRole"},
        "S3 bucket": {"cue-config-production", "cue-zappa-deployments"},
        "REST API": {"cue-production"},
    }
    kept = rehearsal.kept_by_design(production(), "cue-production")
    assert failing(rehearsal.check_undeployment(before, after, kept)) == {
        "nothing left": "REST API: ['cue-production']"
    }
    excused = {"REST API": {"cue-production"}}
    assert failing(rehearsal.check_undeployment(before, after, kept, excused)) == {}
    after["lambda function"].add("cue-production")
    assert (
        "lambda function: ['cue-production']"
        in failing(rehearsal.check_undeployment(before, after, kept, excused))["nothing left"]
    )


def test_expected_rules_use_zappas_names_and_keep_warm():
    dev_config = stages.resolved(SETTINGS, "dev")
    dev = stage_rules(dev_config, "cue-dev")
    assert dev == [
        {"name": f"cue-dev-{e['function']}", "expression": e["expression"], "function": e["function"]}
        for e in dev_config["events"]
    ]
    assert {
        "name": "cue-dev-apps.tasks.jobs.sweep",
        "expression": "rate(1 minute)",
        "function": "apps.tasks.jobs.sweep",
    } in dev
    prod = {r["name"]: r["expression"] for r in stage_rules(production(), "cue-production")}
    assert prod["cue-production-zappa-keep-warm-handler.keep_warm_callback"] == "rate(4 minutes)"


# ------------------------------------------------------------------------------
# Stages, overlay, guard
# ------------------------------------------------------------------------------
def test_every_deployable_stage_is_found_feature_overlays_included(tmp_path):
    shutil.copy(stages.SETTINGS, tmp_path / "zappa_settings.json")
    stages.stage_create("feature/rehearse-me", settings_path=tmp_path / "zappa_settings.json", root=tmp_path)
    found = dict(rehearsal.discover_stages(tmp_path / "zappa_settings.json", tmp_path))
    assert sorted(found) == ["dev", "feature-rehearse-me", "production", "staging"], "base is only extended"
    assert found["feature-rehearse-me"].name == "zappa_settings.feature-rehearse-me.json"
    assert found["dev"].name == "zappa_settings.json"


def test_overlay_changes_only_the_rehearsed_stage(tmp_path):
    committed = rehearsal.SETTINGS.read_text()
    overlay = json.loads(
        stages.write_overlay(rehearsal.SETTINGS, "production", rehearsal.REHEARSAL_OVERRIDES, tmp_path).read_text()
    )
    assert rehearsal.SETTINGS.read_text() == committed
    # Policy files are named from the settings' folder, since Zappa runs elsewhere (in the runtime tree).
    absolute = stages.absolute_policies(SETTINGS, rehearsal.SETTINGS.parent)
    assert absolute["production"]["attach_policy"] == str(rehearsal.ROOT / "iam" / "production.json")
    assert overlay["production"] == {**absolute["production"], **rehearsal.REHEARSAL_OVERRIDES}
    assert overlay["production"]["touch"] is False
    assert overlay["production"]["use_precompiled_packages"] is False
    assert {k: v for k, v in overlay.items() if k != "production"} == {
        k: v for k, v in absolute.items() if k != "production"
    }
    with pytest.raises(KeyError):
        stages.write_overlay(rehearsal.SETTINGS, "nope", {}, tmp_path)


def test_outside_guard_refuses_and_records():
    with OutsideGuard() as guard:
        proxies = {"http": f"http://127.0.0.1:{guard.port}", "https": f"http://127.0.0.1:{guard.port}"}
        with pytest.raises(requests.exceptions.ProxyError):
            requests.get("https://abc123.execute-api.us-east-1.amazonaws.com/dev", proxies=proxies, timeout=5)
        response = requests.get("http://example.invalid/x", proxies=proxies, timeout=5)
    assert response.status_code == 403
    assert guard.attempts == ["abc123.execute-api.us-east-1.amazonaws.com:443", "example.invalid"]


def test_unknown_stage_on_the_command_line_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        rehearsal.main(["nope"])
    assert exit_.value.code == 2
    assert "unknown stage(s) ['nope']" in capsys.readouterr().err


# ------------------------------------------------------------------------------
# The real thing: Zappa against moto's server (one deploy per stage, each ~15-60 s)
# ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("stage", "update"), [("dev", True), ("production", False)])
def test_rehearse_stage(stage, update):
    committed = rehearsal.SETTINGS.read_text()
    report = rehearsal.rehearse(stage, update=update)
    assert report.ok, "\n".join(f"{c.name}: {c.detail}" for c in report.failed())
    names = {c.name for c in report.checks}
    assert {"zappa deploy", "lambda function", "package", "async SNS topic", "API Gateway (REST API)"} <= names
    assert {"IAM role", "zappa undeploy", "nothing left", "no AWS endpoint contacted"} <= names
    assert {"realtime authorizer wiring", "failure destination", "alarms"} <= names
    for action in ("create", "remove"):
        assert report.check(f"tools.stage_aws {action}").ok
        assert report.check(f"tools.stage_aws {action} again: no changes").ok
    assert rehearsal.AUTHORIZER_NOT_REHEARSED in report.notes
    assert f"rule cue-{stage}-apps.tasks.jobs.sweep" in names
    if update:
        assert report.check("zappa update (up to ListFunctionUrlConfigs)").ok
        assert report.check("update: a new version published").ok
        assert rehearsal.UPDATE_NOT_REHEARSED in report.notes
    assert not any("amazonaws.com" in a for a in report.outside_attempts), "touch is off"
    assert rehearsal.SETTINGS.read_text() == committed
    assert not list(rehearsal.ROOT.glob(f"cue-{stage}-*.zip")), "the package was moved out of the project"
