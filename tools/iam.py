"""Each stage's least-privilege execution role: the `zappa-permissions` policy Zappa puts on it, generated here.

    python -m tools.iam            # (re)write iam/<stage>.json for every stage of zappa_settings.json
    python -m tools.iam --check    # exit 1 when a committed file is not what the settings give

Zappa's default policy allows `s3:*`, `sns:*`, `dynamodb:*`... on every resource: the dev stage could
read production's config bucket. Each stage names its own file as `attach_policy` (Zappa uses it
instead of its default, `extra_permissions` appended), allowing exactly what the function does:

- CloudWatch Logs: create and write its own log group, `/aws/lambda/<function>`;
- its remote_env: `s3:GetObject` on that one object (project/remote_env.py and Zappa's handler read it);
- its async topic: `sns:Publish` on `<function>-zappa-async` (zappa.asynchronous, apps/tasks/publisher.py),
  and `sts:GetCallerIdentity`, which both call to spell the topic's ARN (the action has no resource);
- its failure destination: `sqs:SendMessage` on `<function>-async-failures`, where Lambda sends an
  asynchronous invocation that failed (tools/stage_aws.py), as the function's role;
- realtime: `iot:DescribeEndpoint` (no resource either) and `iot:Publish` under its topic root
  (`cue-<stage>/*`, production's `cue/*`: REALTIME_TOPIC_ROOT in project/settings.py);
- with `vpc_config`, the network-interface actions Lambda needs in a VPC.

The rehearsal (tools/rehearsal.py) checks that the deployed role's policy is exactly stage_policy's.
"""

import argparse
import json
import sys
from pathlib import Path

from tools import stages as stage_files

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "zappa_settings.json"
POLICY_DIR = "iam"
PRODUCTION = "production"


VPC_ACTIONS = [
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
]
# Actions that take no resource: the only ones allowed on "*".
UNSCOPED_ACTIONS = frozenset({"iot:DescribeEndpoint", "sts:GetCallerIdentity", *VPC_ACTIONS})


class PolicyError(Exception):
    pass


def policy_path(stage: str) -> str:
    """Where a stage's policy lives, relative to the settings file (as `attach_policy` names it)."""
    return f"{POLICY_DIR}/{stage}.json"


def topic_root(config: dict, stage: str) -> str:
    """The stage's realtime topic root, as project/settings.py derives REALTIME_TOPIC_ROOT."""
    explicit = (config.get("environment_variables") or {}).get("REALTIME_TOPIC_ROOT")
    return explicit or ("cue" if stage == PRODUCTION else f"cue-{stage}")


def remote_env_object(config: dict) -> str:
    url = config.get("remote_env") or ""
    if not url.startswith("s3://") or "/" not in url[5:] or "*" in url:
        raise PolicyError(f"remote_env must name one S3 object (s3://bucket/key), not {url!r}")
    return url[5:]


def stage_policy(config: dict, stage: str) -> dict:
    function = stage_files.function_name(config, stage)
    region = config.get("aws_region", "us-east-1")
    log_group = f"arn:aws:logs:{region}:*:log-group:/aws/lambda/{function}"
    statements = [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [log_group, f"{log_group}:*"],
        },
        {
            "Sid": "OwnRemoteEnv",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"arn:aws:s3:::{remote_env_object(config)}"],
        },
        {
            "Sid": "OwnAsyncTopic",
            "Effect": "Allow",
            "Action": ["sns:Publish"],
            "Resource": [f"arn:aws:sns:{region}:*:{function}-zappa-async"],
        },
        {
            # Lambda sends a failed asynchronous invocation to the on-failure destination as the function's role.
            "Sid": "OwnAsyncFailureQueue",
            "Effect": "Allow",
            "Action": ["sqs:SendMessage"],
            "Resource": [f"arn:aws:sqs:{region}:*:{function}-async-failures"],
        },
        {
            "Sid": "OwnRealtimeTopics",
            "Effect": "Allow",
            "Action": ["iot:Publish"],
            "Resource": [f"arn:aws:iot:{region}:*:topic/{topic_root(config, stage)}/*"],
        },
        {
            "Sid": "ActionsWithoutResources",
            "Effect": "Allow",
            "Action": ["iot:DescribeEndpoint", "sts:GetCallerIdentity"],
            "Resource": "*",
        },
    ]
    if config.get("vpc_config"):
        # What AWSLambdaVPCAccessExecutionRole grants: the function's network interfaces in the VPC (no resource).
        statements.append({"Sid": "VpcNetworkInterfaces", "Effect": "Allow", "Action": VPC_ACTIONS, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": statements}


def expected_policy(config: dict, stage: str) -> dict:
    """What Zappa puts on the role: the stage's attach_policy document with extra_permissions appended."""
    policy = stage_policy(config, stage)
    policy["Statement"] += [dict(permission) for permission in config.get("extra_permissions") or []]
    return policy


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def policy_problems(document: dict, config: dict, stage: str) -> list[str]:
    """What in a role's policy reaches beyond the stage, checked on its own terms (not against stage_policy)."""
    function = stage_files.function_name(config, stage)
    own_object = f"arn:aws:s3:::{remote_env_object(config)}"
    own_topic = f"{function}-zappa-async"
    own_topics = f"topic/{topic_root(config, stage)}/*"
    own_queue = f"{function}-async-failures"
    problems = []
    for statement in _listed(document.get("Statement", [])):
        if statement.get("Effect") != "Allow":
            continue
        actions = _listed(statement.get("Action", []))
        resources = _listed(statement.get("Resource", []))
        services = {action.split(":", 1)[0] for action in actions}
        if [a for a in actions if a == "*" or a.endswith(":*")]:
            problems.append(f"wildcard actions {[a for a in actions if a == '*' or a.endswith(':*')]}")
        if "s3" in services and [r for r in resources if r != own_object]:
            problems.append(f"S3 beyond its remote_env object: {[r for r in resources if r != own_object]}")
        if "sns" in services and [r for r in resources if not r.endswith(f":{own_topic}")]:
            problems.append(f"SNS beyond its topic: {[r for r in resources if not r.endswith(f':{own_topic}')]}")
        beyond_queue = [r for r in resources if not r.endswith(f":{own_queue}")]
        if "sqs" in services and beyond_queue:
            problems.append(f"SQS beyond its failure queue: {beyond_queue}")
        if "iot:Publish" in actions and [r for r in resources if not r.endswith(own_topics)]:
            problems.append(f"IoT publish beyond {own_topics}: {[r for r in resources if not r.endswith(own_topics)]}")
        if "logs" in services and [r for r in resources if f"/aws/lambda/{function}" not in r]:
            problems.append(
                f"logs beyond its log group: {[r for r in resources if f'/aws/lambda/{function}' not in r]}"
            )
        unscoped = set(actions) - UNSCOPED_ACTIONS
        if "*" in resources and unscoped:
            problems.append(f"{sorted(unscoped)} on every resource")
    return problems


def deployable_stages(settings: dict) -> list[str]:
    parents = {config.get("extends") for config in settings.values()}
    return [stage for stage in settings if stage not in parents]


def policy_text(policy: dict) -> str:
    return json.dumps(policy, indent=4) + "\n"


def write_policies(settings_path: Path = SETTINGS, *, check: bool = False) -> list[str]:
    """Write (or with check, compare) every deployable stage's policy file; the files that differ(ed)."""
    settings = json.loads(settings_path.read_text())
    differing = []
    for stage in deployable_stages(settings):
        config = stage_files.resolved(settings, stage)
        if config.get("attach_policy") != policy_path(stage):
            raise PolicyError(f"stage {stage!r} must set attach_policy to {policy_path(stage)!r}")
        target = settings_path.parent / policy_path(stage)
        wanted = policy_text(stage_policy(config, stage))
        if not target.is_file() or target.read_text() != wanted:
            differing.append(str(target.relative_to(settings_path.parent)))
            if not check:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(wanted)
    return differing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.iam", description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--settings", type=Path, default=SETTINGS, help="zappa settings file")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    try:
        differing = write_policies(args.settings, check=args.check)
    except PolicyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    verb = "out of date" if args.check else "written"
    print(f"{verb}: {', '.join(differing)}" if differing else "every stage's policy is up to date")
    return 1 if args.check and differing else 0


if __name__ == "__main__":
    sys.exit(main())
