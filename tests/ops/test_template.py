"""`zappa template STAGE`: the API Gateway CloudFormation template of each stage, written offline, passes cfn-lint."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tools.local_aws import OutsideGuard, clean_aws_environment

pytestmark = pytest.mark.slow

STAGES = ("dev", "staging", "production")
ACCOUNT = "123456789012"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def offline_env(moto_server):
    """Zappa pointed at moto, every other connection refused (Zappa asks PyPI for its latest version)."""
    with OutsideGuard() as guard:
        env = clean_aws_environment(dict(os.environ)) | moto_server.env() | guard.env()
        yield env, guard


def zappa_template(stage: str, out: Path, env: dict) -> subprocess.CompletedProcess:
    function = f"cue-{stage}"
    return subprocess.run(
        [
            str(VENV_BIN / "zappa"),
            "template",
            stage,
            "-l",
            f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{function}",
            "-r",
            f"arn:aws:iam::{ACCOUNT}:role/{function}-ZappaLambdaExecutionRole",
            "-o",
            str(out),
        ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("stage", STAGES)
def test_template_is_written_offline_and_passes_cfn_lint(stage, tmp_path, offline_env):
    env, guard = offline_env
    out = tmp_path / f"cue-{stage}-template.json"
    result = zappa_template(stage, out, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [host for host in guard.attempts if "amazonaws.com" in host], guard.attempts

    template = json.loads(out.read_text())
    resources = template["Resources"]
    [api] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert api["Properties"]["Name"] == f"cue-{stage}"
    methods = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"]
    assert {m["Properties"]["HttpMethod"] for m in methods} == {"ANY"}
    for method in methods:
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert f"function:cue-{stage}/invocations" in integration["Uri"]

    lint = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), "--regions", "us-east-1", "--", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_cfn_lint_fails_a_broken_template(tmp_path):
    """The lint step can fail: an API method whose integration has no type is an error."""
    broken = {
        "Resources": {
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "x"}},
            "Any": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "ANY",
                    "ResourceId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "RestApiId": {"Ref": "Api"},
                    "AuthorizationType": "NONE",
                    "Integration": {"IntegrationHttpMethod": "POST", "Uri": 7},
                },
            },
        }
    }
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    lint = subprocess.run(
        [str(VENV_BIN / "cfn-lint"), "--regions", "us-east-1", "--", str(path)], capture_output=True, text=True
    )
    assert lint.returncode != 0
