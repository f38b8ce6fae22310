"""Feature-branch stages: one command creates a Zappa stage (and its database) for a branch, one removes it.

A feature stage extends `staging`, gets its own Lambda function (hence its own async SNS topic,
`<function>-zappa-async`), and its own database on the staging database server (CUE_DATABASE_NAME
overrides the database name in the DATABASE_URL that staging's remote_env provides). It is written
into an overlay file, `zappa_settings.<stage>.json` (the committed settings plus the stage), so
main's zappa_settings.json never carries branch stages; every zappa command names it with `-s`.
"""

import argparse
import copy
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "zappa_settings.json"
PARENT_STAGE = "staging"

# AWS limits the stage's names must fit: the Lambda function `<project>-<stage>` (64 characters) and
# the IAM role Zappa makes for it, `<function>-ZappaLambdaExecutionRole` (64), the tighter of the two.
# The async topic `<function>-zappa-async` (SNS: 256) and the database name (PostgreSQL: 63) fit then.
ROLE_SUFFIX = "-ZappaLambdaExecutionRole"
MAX_ROLE_NAME = 64
SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class StageError(Exception):
    """A clear, operator-facing reason why nothing was written."""


def slug_for(branch: str) -> str:
    """`feature/Fix-Login_Page` -> `fix-login-page`; refuses what would not make a valid name."""
    name = branch.strip()
    for prefix in ("refs/heads/", "feature/", "feature-", "feat/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if not slug or not SLUG_RE.match(slug):
        raise StageError(f"branch name {branch!r} has no letters or digits to name a stage after")
    return slug


def load_settings(path: Path = SETTINGS) -> dict:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise StageError(f"{path} not found") from exc
    except json.JSONDecodeError as exc:
        raise StageError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or PARENT_STAGE not in data:
        raise StageError(f"{path} has no {PARENT_STAGE!r} stage to extend")
    return data


def resolved(settings: dict, stage: str) -> dict:
    """The stage after Zappa's `extends` (a shallow update, parent first)."""
    config = settings[stage]
    if "extends" in config:
        return {**resolved(settings, config["extends"]), **{k: v for k, v in config.items() if k != "extends"}}
    return dict(config)


def absolute_policies(settings: dict, base: Path) -> dict:
    """The settings with each `attach_policy`/`assume_policy` path made absolute from base.

    Zappa opens them from the folder it runs in, and bin/package and the rehearsal run it elsewhere.
    """
    return {
        stage: {
            key: str((base / value).resolve()) if key in ("attach_policy", "assume_policy") else value
            for key, value in config.items()
        }
        for stage, config in settings.items()
    }


def write_overlay(settings_path: Path, stage: str, overrides: dict, out_dir: Path) -> Path:
    """`zappa_settings.json` in out_dir: the settings with one stage's own entry updated; the source is untouched."""
    settings = json.loads(settings_path.read_text())
    if stage not in settings:
        raise KeyError(f"no stage {stage!r} in {settings_path}")
    overlay = absolute_policies(copy.deepcopy(settings), settings_path.parent)
    overlay[stage].update(overrides)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "zappa_settings.json"
    target.write_text(json.dumps(overlay, indent=4) + "\n")
    return target


def function_name(config: dict, stage: str) -> str:
    """The stage's Lambda function, named as Zappa names it: `<project_name>-<stage>`, slugified."""
    import slugify  # Zappa's own dependency

    return slugify.slugify(f"{config['project_name']}-{stage}")


def overlay_path(stage: str, root: Path = ROOT) -> Path:
    return root / f"zappa_settings.{stage}.json"


def stage_names(settings: dict, slug: str) -> dict[str, str]:
    stage = f"feature-{slug}"
    project = resolved(settings, PARENT_STAGE).get("project_name", "cue")
    function = f"{project}-{stage}"
    names = {
        "stage": stage,
        "function": function,
        "topic": f"{function}-zappa-async",
        "role": function + ROLE_SUFFIX,
        "database": f"{project}_{stage}".replace("-", "_"),
    }
    if len(names["role"]) > MAX_ROLE_NAME:
        room = MAX_ROLE_NAME - len(names["role"]) + len(slug)
        raise StageError(f"branch slug {slug!r} is too long: at most {room} characters fit AWS's name limits")
    return names


def stage_create(
    branch: str,
    *,
    database_url: str | None = None,
    settings_path: Path = SETTINGS,
    root: Path = ROOT,
    aws=None,
) -> dict:
    """Create the stage's database (with an admin URL), then write the overlay; nothing is written on error.

    With `aws` (tools.stage_aws.Clients), the stage's own AWS resources follow (tools/stage_aws.py):
    the IoT authorizer and domain configuration, the failure queue; the parts needing the function
    wait for `zappa deploy` (result["aws"] says which).
    """
    settings = load_settings(settings_path)
    names = stage_names(settings, slug_for(branch))
    stage = names["stage"]
    target = overlay_path(stage, root)
    if stage in settings or target.exists():
        raise StageError(f"stage {stage!r} already exists ({target.name}); remove it first")
    parent = resolved(settings, PARENT_STAGE)
    env = dict(parent.get("environment_variables", {}))
    env.update({"CUE_DATABASE_NAME": names["database"], "CUE_STAGE": stage})
    if database_url:
        database_create(database_url, names["database"])
    from tools import iam

    overlay = copy.deepcopy(settings)
    overlay[stage] = {
        "extends": PARENT_STAGE,
        # `extends` is shallow: the whole dict is restated, staging's values included.
        "environment_variables": env,
        "keep_warm": False,
        # Its own least-privilege role (its function's logs, topic and realtime root; staging's remote_env).
        "attach_policy": iam.policy_path(stage),
    }
    policy = root / iam.policy_path(stage)
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(iam.policy_text(iam.stage_policy(resolved(overlay, stage), stage)))
    # A local, ignored file: its policy paths absolute, so Zappa finds them whatever folder it runs in.
    target.write_text(json.dumps(absolute_policies(overlay, root), indent=4) + "\n")
    result = {**names, "settings_file": str(target), "commands": commands_for(stage, target.name)}
    if aws is not None:
        result["aws"] = _stage_aws(overlay, stage, "create", aws)
    return result


def _stage_aws(settings: dict, stage: str, action: str, clients) -> list[str]:
    from tools import stage_aws

    return stage_aws.apply(stage_aws.stage_aws(resolved(settings, stage), stage), action, clients)


def commands_for(stage: str, settings_file: str) -> list[str]:
    return [
        f"zappa deploy {stage} -s {settings_file}",
        f"python -m tools.stage_aws {stage} create -s {settings_file}",
        f"zappa manage {stage} migrate -s {settings_file}",
        f"zappa update {stage} -s {settings_file}",
        f"zappa undeploy {stage} -s {settings_file} --remove-logs --yes",
    ]


def database_create(database_url: str, name: str) -> None:
    _admin_sql(database_url, f'CREATE DATABASE "{name}"')


def database_drop(database_url: str, name: str) -> None:
    _admin_sql(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _admin_sql(database_url: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(database_url)
    try:
        conn.autocommit = True  # CREATE/DROP DATABASE cannot run in a transaction
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def stage_remove(
    branch: str,
    *,
    database_url: str | None = None,
    settings_path: Path = SETTINGS,
    root: Path = ROOT,
    aws=None,
) -> dict:
    """After `zappa undeploy`: remove its AWS resources (with `aws`), drop its database (with an admin URL),
    then delete the overlay."""
    settings = load_settings(settings_path)
    names = stage_names(settings, slug_for(branch))
    target = overlay_path(names["stage"], root)
    if not target.exists():
        raise StageError(f"stage {names['stage']!r} does not exist (no {target.name})")
    if aws is not None:
        names = {**names, "aws": _stage_aws(json.loads(target.read_text()), names["stage"], "remove", aws)}
    if database_url:
        database_drop(database_url, names["database"])
    from tools import iam

    (root / iam.policy_path(names["stage"])).unlink(missing_ok=True)
    target.unlink()
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/feature-stage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("create", "remove"):
        p = sub.add_parser(action)
        p.add_argument("branch", help="git branch name, e.g. feature/login-page")
        p.add_argument(
            "--database-url",
            help="admin URL of the staging database server; with it the stage's database is "
            + ("created" if action == "create" else "dropped (after `zappa undeploy`)"),
        )
        p.add_argument(
            "--no-aws",
            action="store_true",
            help="leave the stage's IoT authorizer, domain configuration and failure queue alone "
            "(tools/stage_aws.py; otherwise " + ("created" if action == "create" else "removed") + ")",
        )
    args = parser.parse_args(argv)
    aws = None
    if not args.no_aws:
        from tools.stage_aws import Clients

        aws = Clients(resolved(load_settings(), PARENT_STAGE).get("aws_region", "us-east-1"))
    try:
        if args.action == "create":
            result = stage_create(args.branch, database_url=args.database_url, aws=aws)
            for line in result.get("aws", []):
                print(line)
            print(f"Stage {result['stage']} written to {Path(result['settings_file']).name}.")
            print(
                f"Lambda function {result['function']}, async topic {result['topic']}, database {result['database']}."
            )
            if not args.database_url:
                print(f'Create its database on the staging server: CREATE DATABASE "{result["database"]}";')
            print("Then:")
            for command in result["commands"][:3]:
                print(f"  {command}")
        else:
            names = stage_remove(args.branch, database_url=args.database_url, aws=aws)
            for line in names.get("aws", []):
                print(line)
            if args.database_url:
                print(f"Stage {names['stage']} removed; database {names['database']} dropped.")
            else:
                print(f'Stage {names["stage"]} removed. Drop its database: DROP DATABASE "{names["database"]}";')
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a database error: say it plainly, the overlay was not touched
        print(f"error: {type(exc).__name__}: {exc}".strip(), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
