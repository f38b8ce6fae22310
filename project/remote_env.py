"""A stage's remote_env (a flat JSON object in S3) read at cold start with one signed GET, without an S3 client.

Zappa reads it through `boto3.resource("s3")`: building that client loads botocore's S3 model and
endpoint rules, about a fifth of Cue's cold start, for one GET. project.lambda_entry hands Zappa's
LambdaHandler this loader instead: the same request (SigV4, the function's credentials and region,
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` when set), the same effect (every key into os.environ),
but no value is ever printed (Zappa prints them all at log level DEBUG), and a file that cannot be
read stops the cold start with the reason instead of starting Django without its secrets.
"""

import json
import os
from urllib.parse import quote

from project.redaction import secret_values_add

TIMEOUT_SECONDS = 5


class RemoteEnvError(RuntimeError):
    """The stage's remote_env could not be read: the message says which file and why."""


def _credentials():
    from botocore.credentials import Credentials

    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        # What the Lambda runtime provides: the execution role's temporary credentials.
        return Credentials(
            os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"], os.environ.get("AWS_SESSION_TOKEN")
        )
    import boto3

    found = boto3.Session().get_credentials()
    if found is None:
        raise RemoteEnvError("no AWS credentials to read remote_env with")
    return found.get_frozen_credentials()


def object_url(bucket: str, key: str, region: str) -> str:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:  # a local stand-in (moto): path-style addressing
        return f"{endpoint.rstrip('/')}/{bucket}/{quote(key)}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{quote(key)}"


def remote_env_fetch(bucket: str, key: str) -> dict[str, str]:
    """The JSON object at s3://bucket/key, read with a SigV4-signed GET."""
    import urllib3
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    url = object_url(bucket, key, region)
    request = AWSRequest(method="GET", url=url)
    S3SigV4Auth(_credentials(), "s3", region).add_auth(request)
    where = f"s3://{bucket}/{key}"
    try:
        response = urllib3.request(
            "GET",
            url,
            headers=dict(request.headers.items()),
            timeout=urllib3.Timeout(total=TIMEOUT_SECONDS),
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=(500, 502, 503, 504)),
        )
    except urllib3.exceptions.HTTPError as exc:
        raise RemoteEnvError(f"remote_env {where} could not be read: {exc}") from exc
    if response.status != 200:
        raise RemoteEnvError(f"remote_env {where} could not be read: HTTP {response.status} {response.data[:300]!r}")
    try:
        values = json.loads(response.data)
    except ValueError as exc:
        raise RemoteEnvError(f"remote_env {where} is not JSON") from exc
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise RemoteEnvError(f"remote_env {where} must be a flat JSON object of strings")
    return values


def load_remote_settings(handler, remote_bucket: str, remote_file: str) -> None:
    """Zappa's LambdaHandler.load_remote_settings, replaced (see the module's docstring)."""
    values = remote_env_fetch(remote_bucket, remote_file)
    secret_values_add(*values.values())  # every remote_env value is a secret: never in a log line
    for name, value in values.items():
        os.environ[str(name)] = value
    # Names only: the values are secrets.
    print(f"remote_env s3://{remote_bucket}/{remote_file}: {len(values)} settings ({', '.join(sorted(values))})")
