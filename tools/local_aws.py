"""AWS on this machine: moto's server on loopback, and a guard that refuses (and records) any other connection.

Used by the deploy rehearsal and the local Lambda emulator, never by the deployed code: moto is a
development dependency, imported only when a server starts.
"""

import json
import logging
import socket
import socketserver
import threading

REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's dummy credentials
    "AWS_SESSION_TOKEN": "testing",
}
# Variables that would send boto3 somewhere else than the endpoint given here.
AWS_PROFILE_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


class LocalAws:
    """moto's server on 127.0.0.1 on a free port; `env()` points boto3 (and Zappa) at it."""

    def __init__(self, region: str = REGION):
        self.region = region
        self.url = ""
        self._server = None

    def start(self) -> "LocalAws":
        from moto.server import ThreadedMotoServer

        # moto's server logs every request through werkzeug at INFO: noise in a rehearsal or an emulator console.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> "LocalAws":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        import requests

        requests.post(f"{self.url}/moto-api/reset", timeout=10)

    def env(self) -> dict[str, str]:
        return {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            region_name=self.region,
            endpoint_url=self.url,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def put_remote_env(self, s3_url: str, values: dict) -> None:
        """Write a stage's remote_env file (s3://bucket/key), as operators do in the stage's config bucket."""
        bucket, _, key = s3_url.removeprefix("s3://").partition("/")
        s3 = self.client("s3")
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(values).encode())


def clean_aws_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment without profiles or endpoints that could lead boto3 to a real account."""
    drop = set(AWS_PROFILE_VARIABLES) | {k for k in environ if k.startswith("AWS_ENDPOINT_URL")}
    return {k: v for k, v in environ.items() if k not in drop}


class OutsideGuard:
    """An HTTP(S) proxy on loopback that refuses every connection and records where it was going.

    Given as HTTP(S)_PROXY to a child process (NO_PROXY keeps loopback direct), it makes sure that
    process reaches nothing but this machine, and tells afterwards what it tried (Zappa asks PyPI
    for a newer version of itself on every command; `touch` would GET the deployed API's URL).
    """

    def __init__(self):
        self.attempts: list[str] = []
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingTCPServer | None = None
        self.port = 0

    def start(self) -> "OutsideGuard":
        guard = self

        class Refuse(socketserver.StreamRequestHandler):
            def handle(self):
                try:
                    line = self.rfile.readline(8192).decode("latin-1").split()
                except OSError:
                    return
                if len(line) >= 2:
                    # "CONNECT pypi.org:443 HTTP/1.1" or "GET http://host/path HTTP/1.1"
                    target = line[1].removeprefix("http://").split("/")[0]
                    with guard._lock:
                        guard.attempts.append(target)
                self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Refuse)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="outside-guard", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "OutsideGuard":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        proxy = f"http://127.0.0.1:{self.port}"
        direct = "127.0.0.1,localhost,::1"
        return {
            "HTTP_PROXY": proxy,
            "HTTPS_PROXY": proxy,
            "http_proxy": proxy,
            "https_proxy": proxy,
            "NO_PROXY": direct,
            "no_proxy": direct,
        }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
