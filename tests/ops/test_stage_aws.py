"""tools/stage_aws.py: a stage's realtime authorizer, IoT permission, domain configuration and failure destination.

Which calls are covered how:
- moto's server (the suite's, tests/conftest.py): Lambda AddPermission/RemovePermission/GetPolicy,
  Put/Get/DeleteFunctionEventInvokeConfig; IoT Create/Describe/Update/DeleteDomainConfiguration;
  SQS CreateQueue/GetQueueUrl/GetQueueAttributes/SetQueueAttributes/DeleteQueue; CloudWatch
  PutMetricAlarm/DescribeAlarms/DeleteAlarms; SNS CreateTopic/GetTopicAttributes/DeleteTopic; STS.
- botocore's Stubber on a real `boto3.client("iot")` (moto 5.2 raises NotImplementedError for them):
  IoT Create/Describe/Update/DeleteAuthorizer. The Stubber validates each request against the real
  service model, so a wrong parameter name or type fails the test.
"""

import io
import json
import uuid
import zipfile

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tools import stage_aws

ACCOUNT = "123456789012"  # moto's
REGION = "us-east-1"


def names_for(stage: str) -> stage_aws.StageAws:
    return stage_aws.stage_aws({"project_name": "cue", "aws_region": REGION}, stage)


@pytest.fixture
def stage(moto_server):
    return f"t{uuid.uuid4().hex[:10]}"


def deploy_function(function: str) -> str:
    """What `zappa deploy` makes, as far as these parts need: the function."""
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(RoleName=f"{function}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as zf:
        zf.writestr("handler.py", "def handler(event, context):\n    return None\n")
    lam = boto3.client("lambda", region_name=REGION)
    return lam.create_function(
        FunctionName=function,
        Runtime="python3.11",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": code.getvalue()},
    )["FunctionArn"]


def authorizer_stub(names, *, exists: dict | None = None):
    """A real IoT client under a Stubber: every request validated against the service model, no HTTP."""
    iot = boto3.client("iot", region_name=REGION)
    stubber = Stubber(iot)
    if exists is None:
        stubber.add_client_error("describe_authorizer", "ResourceNotFoundException", http_status_code=404)
    else:
        stubber.add_response(
            "describe_authorizer",
            {"authorizerDescription": {"authorizerName": names.authorizer, **exists}},
            {"authorizerName": names.authorizer},
        )
    return iot, stubber


def test_names_follow_the_settings_and_zappa():
    names = names_for("dev")
    assert names.function == "cue-dev"
    assert names.authorizer == "cue-realtime-dev"  # project/settings.py's REALTIME_IOT_AUTHORIZER default
    assert names.failure_queue == "cue-dev-async-failures"
    assert names.authorizer_arn(ACCOUNT) == f"arn:aws:iot:{REGION}:{ACCOUNT}:authorizer/cue-realtime-dev"
    custom = stage_aws.stage_aws(
        {"project_name": "cue", "environment_variables": {"REALTIME_IOT_AUTHORIZER": "browsers"}}, "production"
    )
    assert custom.authorizer == "browsers" and custom.domain_configuration == "cue-realtime-production"


# ---------------------------------------------------------------- authorizer (Stubber)
def test_authorizer_is_created_invoking_the_function_with_signing_disabled():
    names = names_for("dev")
    iot, stubber = authorizer_stub(names)
    stubber.add_response(
        "create_authorizer",
        {"authorizerName": names.authorizer},
        {
            "authorizerName": names.authorizer,
            "authorizerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:cue-dev",
            "signingDisabled": True,
            "status": "ACTIVE",
            "enableCachingForHttp": False,
            "tags": [{"Key": "cue:stage", "Value": "dev"}],
        },
    )
    with stubber:
        changes = stage_aws.authorizer_create(names, ACCOUNT, iot)
    stubber.assert_no_pending_responses()
    assert changes == ["created IoT authorizer cue-realtime-dev -> cue-dev"]


def test_an_authorizer_as_declared_is_left_alone():
    names = names_for("dev")
    iot, stubber = authorizer_stub(
        names,
        exists={
            "authorizerFunctionArn": names.function_arn(ACCOUNT),
            "status": "ACTIVE",
            "signingDisabled": True,
        },
    )
    with stubber:  # any call beyond describe_authorizer would fail: the Stubber has no response for it
        assert stage_aws.authorizer_create(names, ACCOUNT, iot) == []
    stubber.assert_no_pending_responses()


def test_an_authorizer_pointing_elsewhere_or_inactive_is_updated():
    names = names_for("dev")
    iot, stubber = authorizer_stub(
        names,
        exists={
            "authorizerFunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:cue-old",
            "status": "INACTIVE",
            "signingDisabled": True,
        },
    )
    stubber.add_response(
        "update_authorizer",
        {"authorizerName": names.authorizer},
        {"authorizerName": names.authorizer, "authorizerFunctionArn": names.function_arn(ACCOUNT), "status": "ACTIVE"},
    )
    with stubber:
        assert stage_aws.authorizer_create(names, ACCOUNT, iot) == [
            "updated IoT authorizer cue-realtime-dev -> cue-dev, ACTIVE"
        ]
    stubber.assert_no_pending_responses()


def test_a_signing_authorizer_is_replaced_because_update_cannot_disable_signing():
    names = names_for("dev")
    signing = {"authorizerFunctionArn": names.function_arn(ACCOUNT), "status": "ACTIVE", "signingDisabled": False}
    iot, stubber = authorizer_stub(names, exists=signing)
    # remove: describe again, deactivate, delete; then create.
    stubber.add_response(
        "describe_authorizer",
        {"authorizerDescription": {"authorizerName": names.authorizer, **signing}},
        {"authorizerName": names.authorizer},
    )
    stubber.add_response("update_authorizer", {}, {"authorizerName": names.authorizer, "status": "INACTIVE"})
    stubber.add_response("delete_authorizer", {}, {"authorizerName": names.authorizer})
    stubber.add_response("create_authorizer", {"authorizerName": names.authorizer}, None)
    with stubber:
        assert stage_aws.authorizer_create(names, ACCOUNT, iot) == [
            "created IoT authorizer cue-realtime-dev -> cue-dev"
        ]
    stubber.assert_no_pending_responses()


def test_authorizer_removal_deactivates_then_deletes_and_a_missing_one_is_no_change():
    names = names_for("dev")
    iot, stubber = authorizer_stub(
        names, exists={"authorizerFunctionArn": names.function_arn(ACCOUNT), "status": "ACTIVE"}
    )
    stubber.add_response("update_authorizer", {}, {"authorizerName": names.authorizer, "status": "INACTIVE"})
    stubber.add_response("delete_authorizer", {}, {"authorizerName": names.authorizer})
    stubber.add_client_error("describe_authorizer", "ResourceNotFoundException", http_status_code=404)
    with stubber:
        assert stage_aws.authorizer_remove(names, ACCOUNT, iot) == ["deleted IoT authorizer cue-realtime-dev"]
        assert stage_aws.authorizer_remove(names, ACCOUNT, iot) == []
    stubber.assert_no_pending_responses()


def test_another_iot_error_is_not_taken_for_absence():
    names = names_for("dev")
    iot = boto3.client("iot", region_name=REGION)
    stubber = Stubber(iot)
    stubber.add_client_error("describe_authorizer", "AccessDeniedException", http_status_code=403)
    with stubber, pytest.raises(ClientError, match="AccessDenied"):
        stage_aws.authorizer_create(names, ACCOUNT, iot)


# ---------------------------------------------------------------- the whole stage (moto + the Stubber)
def stubbed_authorizer_for_create(names):
    iot, stubber = authorizer_stub(names)
    stubber.add_response("create_authorizer", {"authorizerName": names.authorizer}, None)
    return iot, stubber


def inventory(names) -> dict:
    """What exists of the stage's parts in moto."""
    lam, iot, sqs = (boto3.client(s, region_name=REGION) for s in ("lambda", "iot", "sqs"))
    try:
        statements = json.loads(lam.get_policy(FunctionName=names.function)["Policy"])["Statement"]
    except ClientError:
        statements = []
    try:
        config = lam.get_function_event_invoke_config(FunctionName=names.function)
        config.pop("ResponseMetadata")  # its request id differs on every call
    except ClientError:
        config = None
    alarms = boto3.client("cloudwatch", region_name=REGION).describe_alarms(AlarmNamePrefix=f"{names.function}-")
    topics = boto3.client("sns", region_name=REGION).list_topics()["Topics"]
    return {
        "alarms": sorted(a["AlarmName"] for a in alarms["MetricAlarms"]),
        "alarm topic": [t["TopicArn"] for t in topics if t["TopicArn"].endswith(f":{names.alarm_topic}")],
        "permission": [s for s in statements if s.get("Sid") == stage_aws.PERMISSION_SID],
        "invoke config": config,
        "domain configurations": [
            d["domainConfigurationName"]
            for d in iot.list_domain_configurations()["domainConfigurations"]
            if d["domainConfigurationName"] == names.domain_configuration
        ],
        "queues": [u for u in sqs.list_queues(QueueNamePrefix=names.failure_queue).get("QueueUrls", [])],
    }


NOTHING = {
    "alarms": [],
    "alarm topic": [],
    "permission": [],
    "invoke config": None,
    "domain configurations": [],
    "queues": [],
}


def test_create_twice_then_remove_leaves_nothing(stage):
    names = names_for(stage)
    deploy_function(names.function)
    iot, stubber = stubbed_authorizer_for_create(names)
    clients = stage_aws.Clients(REGION, overrides={"authorizer": iot})
    with stubber:
        first = stage_aws.apply(names, "create", clients)
    assert [c.split(" ")[0] for c in first] == [
        "created",
        "added",
        "created",
        "created",
        "asynchronous",
        "created",
        *["created"] * len(stage_aws.ALARMS),
    ]

    state = inventory(names)
    (statement,) = state["permission"]
    assert stage_aws.permission_grants(statement, names.authorizer_arn(ACCOUNT))
    assert state["domain configurations"] == [names.domain_configuration]
    domain = boto3.client("iot", region_name=REGION).describe_domain_configuration(
        domainConfigurationName=names.domain_configuration
    )
    assert domain["authorizerConfig"] == {"defaultAuthorizerName": names.authorizer, "allowAuthorizerOverride": True}
    assert domain["serviceType"] == "DATA" and domain["domainConfigurationStatus"] == "ENABLED"
    assert state["invoke config"]["MaximumRetryAttempts"] == stage_aws.MAX_RETRY_ATTEMPTS
    assert state["invoke config"]["MaximumEventAgeInSeconds"] == stage_aws.MAX_EVENT_AGE_SECONDS
    assert state["invoke config"]["DestinationConfig"]["OnFailure"]["Destination"] == names.failure_queue_arn(ACCOUNT)
    assert len(state["queues"]) == 1

    # Second run: the authorizer as declared (describe only), and nothing else changes.
    iot, stubber = authorizer_stub(
        names,
        exists={"authorizerFunctionArn": names.function_arn(ACCOUNT), "status": "ACTIVE", "signingDisabled": True},
    )
    with stubber:
        assert stage_aws.apply(names, "create", stage_aws.Clients(REGION, overrides={"authorizer": iot})) == []
    assert inventory(names) == state

    iot, stubber = authorizer_stub(
        names, exists={"authorizerFunctionArn": names.function_arn(ACCOUNT), "status": "ACTIVE"}
    )
    stubber.add_response("update_authorizer", {}, None)
    stubber.add_response("delete_authorizer", {}, None)
    with stubber:
        removed = stage_aws.apply(names, "remove", stage_aws.Clients(REGION, overrides={"authorizer": iot}))
    stubber.assert_no_pending_responses()
    assert [c.split(" ")[0] for c in removed] == [
        "deleted",
        "deleted",
        "removed",
        "deleted",
        "deleted",
        "removed",
        "deleted",
    ]
    assert inventory(names) == NOTHING

    iot, stubber = authorizer_stub(names)
    with stubber:
        assert stage_aws.apply(names, "remove", stage_aws.Clients(REGION, overrides={"authorizer": iot})) == []


def test_before_deploy_the_function_parts_wait_and_after_deploy_they_are_made(stage):
    names = names_for(stage)
    parts = ("permission", "domain", "failures")
    before = stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts)
    waiting = [c for c in before if isinstance(c, stage_aws.Waiting)]
    assert len(waiting) == 2 and all(names.function in w for w in waiting)
    deploy_function(names.function)
    after = stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts)
    assert [c.split(" ")[0] for c in after] == ["added", "asynchronous"]
    assert stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts) == []
    stage_aws.apply(names, "remove", stage_aws.Clients(REGION), parts=parts)


def test_drift_is_corrected(stage):
    """A permission from another source, a disabled domain, a changed invoke config: each put back."""
    names = names_for(stage)
    deploy_function(names.function)
    parts = ("permission", "domain", "failures")
    stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts)
    lam, iot = boto3.client("lambda", region_name=REGION), boto3.client("iot", region_name=REGION)
    lam.remove_permission(FunctionName=names.function, StatementId=stage_aws.PERMISSION_SID)
    lam.add_permission(
        FunctionName=names.function,
        StatementId=stage_aws.PERMISSION_SID,
        Action="lambda:InvokeFunction",
        Principal="iot.amazonaws.com",
        SourceArn=f"arn:aws:iot:{REGION}:{ACCOUNT}:authorizer/someone-else",
    )
    iot.update_domain_configuration(
        domainConfigurationName=names.domain_configuration, domainConfigurationStatus="DISABLED"
    )
    # (moto 5.2 appends a second PUT and answers GET with the first: replace it by delete + put.)
    lam.delete_function_event_invoke_config(FunctionName=names.function)
    lam.put_function_event_invoke_config(FunctionName=names.function, MaximumRetryAttempts=0)
    changes = stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts)
    assert [c.split(" ")[0] for c in changes] == ["replaced", "updated", "asynchronous"]
    assert stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts) == []
    stage_aws.apply(names, "remove", stage_aws.Clients(REGION), parts=parts)


def test_removal_after_undeploy_skips_the_gone_function(stage):
    names = names_for(stage)
    deploy_function(names.function)
    parts = ("permission", "domain", "failures")
    stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=parts)
    boto3.client("lambda", region_name=REGION).delete_function(FunctionName=names.function)
    removed = stage_aws.apply(names, "remove", stage_aws.Clients(REGION), parts=parts)
    assert removed == [
        f"deleted SQS queue {names.failure_queue}",
        f"deleted IoT domain configuration {names.domain_configuration}",
    ]
    assert inventory(names) == NOTHING


def test_command_line_reports_changes_then_none(stage, tmp_path, capsys):
    settings = tmp_path / "zappa_settings.json"
    settings.write_text(json.dumps({stage: {"project_name": "cue", "aws_region": REGION}}))
    names = names_for(stage)
    deploy_function(names.function)
    args = [stage, "create", "-s", str(settings), "--only", "permission", "--only", "domain", "--only", "failures"]
    assert stage_aws.main(args) == 0
    assert "created IoT domain configuration" in capsys.readouterr().out
    assert stage_aws.main(args) == 0
    assert capsys.readouterr().out.strip() == f"{stage}: no changes"
    assert (
        stage_aws.main(
            [stage, "remove", "-s", str(settings), "--only", "domain", "--only", "failures", "--only", "permission"]
        )
        == 0
    )
    assert stage_aws.main(["nope", "create", "-s", str(settings)]) == 2
    assert "no stage 'nope'" in capsys.readouterr().err


def test_alarms_point_at_the_stages_own_resources_and_notify_its_topic(stage):
    names = names_for(stage)
    changes = stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=("alarms",))
    assert changes[0] == f"created SNS topic {names.alarm_topic}" and len(changes) == 1 + len(stage_aws.ALARMS)
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = {
        a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{names.function}-")["MetricAlarms"]
    }
    dimensions = {name: {d["Name"]: d["Value"] for d in a["Dimensions"]} for name, a in alarms.items()}
    assert dimensions[f"{names.function}-dead-tasks"] == {"Stage": stage}
    assert dimensions[f"{names.function}-function-errors"] == {"FunctionName": names.function}
    assert dimensions[f"{names.function}-sns-delivery-failures"] == {"TopicName": f"{names.function}-zappa-async"}
    assert dimensions[f"{names.function}-async-failures"] == {"QueueName": names.failure_queue}
    p95 = alarms[f"{names.function}-webhook-ack-p95"]
    assert p95["ExtendedStatistic"] == "p95" and p95["Threshold"] == 1000.0
    assert {tuple(a["AlarmActions"]) for a in alarms.values()} == {(names.alarm_topic_arn(ACCOUNT),)}

    cloudwatch.put_metric_alarm(
        **{**stage_aws.alarm_definitions(names, ACCOUNT)[f"{names.function}-dead-tasks"], "Threshold": 5.0}
    )
    assert stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=("alarms",)) == [
        f"updated alarm {names.function}-dead-tasks"
    ]
    assert stage_aws.apply(names, "create", stage_aws.Clients(REGION), parts=("alarms",)) == []
    stage_aws.apply(names, "remove", stage_aws.Clients(REGION), parts=("alarms",))
    assert inventory(names)["alarms"] == [] and inventory(names)["alarm topic"] == []
