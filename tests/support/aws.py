"""moto's server on 127.0.0.1, standing in for AWS at the boto3 boundary."""

import json

import boto3
import requests
from moto.server import ThreadedMotoServer

from tests.support.events import REGION

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's dummy credentials
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


class MotoServer:
    def __init__(self):
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.url = ""

    def start(self) -> "MotoServer":
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10)

    def env(self) -> dict:
        return {**AWS_ENV, "AWS_ENDPOINT_URL": self.url}

    def client(self, service: str):
        return boto3.client(service, region_name=REGION, endpoint_url=self.url, **_creds())

    def put_remote_env(self, s3_url: str, values: dict) -> None:
        """Write a stage's remote_env file (s3://bucket/key) the way operators do."""
        bucket, _, key = s3_url.removeprefix("s3://").partition("/")
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(values).encode())


def _creds() -> dict:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # noqa: S106
