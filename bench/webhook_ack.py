"""Webhook acknowledgement latency through the real Zappa handler: verify, store, dispatch to SNS (moto).

Prints the median, p95 and p99 over N signed deliveries, the main thread's CPU per delivery
(Cue's own work, whatever else the machine is doing) and the SQL statements per delivery, next
to a baseline measured in the same run through the same handler: the signed ping (the same
request path and signature check, without the store and the dispatch).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/cue_bench python bench/webhook_ack.py [N] [loopback|inprocess]

`loopback`: moto's server on 127.0.0.1 (an HTTP round trip per publish, as to SNS);
`inprocess`: moto's in-process mock (no socket; the SNS call costs only its Python work).
It creates (and drops) its own test_<name> database. Targets: p99 <= 50 ms, <= 4 statements.
"""

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _setup import bench_parser

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def summary(name: str, samples_ms: list[float], cpu_ms: list[float]) -> str:
    return (
        f"{name:<32} n={len(samples_ms):<5} median={statistics.median(samples_ms):6.2f} ms  "
        f"p95={percentile(samples_ms, 95):6.2f} ms  p99={percentile(samples_ms, 99):6.2f} ms  "
        f"max={max(samples_ms):7.2f} ms  cpu median={statistics.median(cpu_ms):5.2f} ms"
    )


class Aws:
    """moto, either as its server on loopback or as the in-process mock; set up before any boto3 client exists."""

    def __init__(self, mode: str):
        from tests.support.aws import AWS_ENV

        self.mode = mode
        if mode == "loopback":
            from tests.support.aws import MotoServer

            self._server = MotoServer().start()
            os.environ.update(self._server.env())
        else:
            from moto import mock_aws

            self._server = None  # until put_remote_env: the remote_env file needs moto's server even here
            os.environ.pop("AWS_ENDPOINT_URL", None)
            os.environ.update(AWS_ENV)
            self._mock = mock_aws()
            self._mock.start()

    def client(self, service: str):
        if self.mode == "loopback":
            return self._server.client(service)
        import boto3

        return boto3.client(service, region_name=os.environ["AWS_REGION"])

    def put_remote_env(self, s3_url: str, values: dict) -> None:
        if self.mode == "loopback":
            self._server.put_remote_env(s3_url, values)
        else:
            from _setup import remote_env_on_loopback

            self._server = remote_env_on_loopback(s3_url, values)

    def stop(self) -> None:
        if self.mode != "loopback":
            self._mock.stop()
        if self._server is not None:
            self._server.stop()


def main(n: int, mode: str, database_url: str) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ["DATABASE_URL"] = database_url  # Django's test_<name> of it is created here and dropped after
    aws = Aws(mode)

    import django

    django.setup()
    # moto's server logs every request it serves; that is the stand-in's cost, not Cue's.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from zappa.utilities import get_topic_name

    from apps.accounts.services import workspace_signup
    from apps.integrations.models import IntercomConnection, WebhookDelivery
    from tests.integrations.intercom_payloads import APP_SECRET, Conversation, encode, hub_signature, ping
    from tests.support.events import apigw_v1, response_json
    from tests.support.lambda_harness import Handler, stage_settings_values, write_stage_settings

    settings.INTERCOM_CLIENT_SECRET = APP_SECRET
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        # The production stage: its log level and settings, not the dev stage's debug logging.
        settings_dir = write_stage_settings("production", Path(tempfile.mkdtemp(prefix="zappa-bench-"))).parent
        values = stage_settings_values(settings_dir / "zappa_settings.py")
        aws.put_remote_env(values["REMOTE_ENV"], {"CUE_REMOTE_ENV_LOADED": "1"})
        owner = workspace_signup(email="bench@example.com", password="correct-horse-battery-1", workspace_name="Bench")
        IntercomConnection.objects.create(
            workspace=owner.workspace, app_id="i6wc9ipe", api_version="2.11", method="oauth", access_token="t"
        )
        function_name = f"{values['PROJECT_NAME']}-{values['API_STAGE']}"
        with Handler(settings_dir, function_name=function_name) as handler:
            os.environ["AWS_LAMBDA_FUNCTION_NAME"] = function_name  # tasks publish to SNS, as in Lambda
            # The stage's async topic, with no subscriber (moto's fan-out to a queue is not SNS's
            # cost); what was published is read from moto's own record of the topic.
            topic_arn = aws.client("sns").create_topic(Name=get_topic_name(function_name))["TopicArn"]

            def published_count() -> int:
                from moto.sns.models import sns_backends

                _, _, _, region, account, _ = topic_arn.split(":")
                return len(sns_backends[account][region].topics[topic_arn].sent_notifications)

            def event_for(payload: dict) -> dict:
                body = encode(payload)
                headers = {"Content-Type": "application/json", "X-Hub-Signature": hub_signature(APP_SECRET, body)}
                return apigw_v1("POST", "/webhooks/intercom", headers=headers, body=body.decode())

            def deliveries(count: int) -> list[dict]:
                return [event_for(Conversation(2).user_replied()) for _ in range(count)]

            def timed(events: list[dict], expect: int, wall: list[float], cpu: list[float]) -> None:
                for event in events:
                    started, started_cpu = time.perf_counter(), time.thread_time()
                    result = handler(event)
                    cpu.append((time.thread_time() - started_cpu) * 1000)
                    wall.append((time.perf_counter() - started) * 1000)
                    assert result["statusCode"] == expect, (result["statusCode"], response_json(result))

            timed(deliveries(100), 200, [], [])  # warm: imports, first connections, the topic ARN lookup
            timed([event_for(ping())] * 50, 200, [], [])

            # Interleave baseline and deliveries so both see the same machine state.
            pings, pings_cpu, acks, acks_cpu, dups, dups_cpu = [], [], [], [], [], []
            duplicate = event_for(Conversation(2).user_created(notification_id="notif_dup"))
            batch = 100
            for _ in range(max(1, n // batch)):
                timed([event_for(ping())] * (batch // 4), 200, pings, pings_cpu)
                timed(deliveries(batch), 200, acks, acks_cpu)
                timed([duplicate] * (batch // 10), 200, dups, dups_cpu)

            counted = 200
            with CaptureQueriesContext(connection) as queries:
                timed(deliveries(counted), 200, [], [])
            with CaptureQueriesContext(connection) as duplicate_queries:
                timed([duplicate] * counted, 200, [], [])
            published = published_count()
            stored = WebhookDelivery.objects.count()

        load = os.getloadavg()
        print(f"Webhook acknowledgement through the Zappa handler, moto {mode}")
        print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(summary("baseline: signed ping", pings, pings_cpu))
        print(summary("new delivery (verify+store+SNS)", acks, acks_cpu))
        print(summary("redelivery (duplicate)", dups, dups_cpu))
        print(
            f"ratio new delivery / ping: median x{statistics.median(acks) / statistics.median(pings):.2f}, "
            f"p99 x{percentile(acks, 99) / percentile(pings, 99):.2f}"
        )
        print(f"SQL statements per new delivery: {len(queries) / counted:.2f} (target <= 4)")
        print(f"SQL statements per redelivery:   {len(duplicate_queries) / counted:.2f}")
        print(f"deliveries stored: {stored}, SNS messages published: {published}")
        p99 = percentile(acks, 99)
        print(f"p99 target <= 50 ms: {'met' if p99 <= 50 else 'NOT met'} ({p99:.2f} ms)")
        return 0
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        aws.stop()


if __name__ == "__main__":
    parser = bench_parser(__doc__, database="cue_bench_ack")
    parser.add_argument("n", nargs="?", type=int, default=2000, help="signed deliveries timed (default 2000)")
    parser.add_argument(
        "mode", nargs="?", choices=["loopback", "inprocess"], default="loopback", help="moto on loopback or in-process"
    )
    args = parser.parse_args()
    sys.exit(main(args.n, args.mode, args.database_url))
