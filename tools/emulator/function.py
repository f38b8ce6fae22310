"""The stage's Lambda function in this process: its entry point behind a Lambda context, containers and logs.

Each worker thread of the pool is one container: its first invocation is a cold start (the first
container of the process also pays the real initialisation: Zappa loads the stage's settings and
remote_env, then Django); later ones are warm. Every invocation is logged as CloudWatch logs it
(START, END, REPORT with duration, billed duration, memory and, when cold, Init Duration).
"""

import math
import os
import resource
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

ACCOUNT = "123456789012"  # moto's account


@dataclass
class LambdaContext:
    """The context object of the Lambda Python runtime, with the stage's timeout counting down."""

    function_name: str
    memory_limit_in_mb: int
    timeout_ms: int
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_stream_name: str = field(default_factory=lambda: f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}")
    identity = None
    client_context = None
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self.timeout_ms - (time.monotonic() - self.started) * 1000))


@dataclass
class Invocation:
    request_id: str
    trigger: str
    cold: bool
    init_ms: float = 0.0
    duration_ms: float = 0.0
    result: object = None
    error: BaseException | None = None
    timed_out: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None or self.timed_out


_LOG_LOCK = threading.Lock()


def stderr_log(line: str) -> None:
    """Lines as CloudWatch shows them, whole even when containers log at once."""
    with _LOG_LOCK:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()


def entry_point(handler_path: str) -> Callable:
    """The stage's `lambda_handler` setting as a function (Zappa's default is its own handler module)."""
    if handler_path.startswith("handler."):
        handler_path = "zappa." + handler_path
    module, _, name = handler_path.rpartition(".")
    return getattr(import_module(module), name)


class StageFunction:
    """The function `<project>-<stage>`: invocations run on a pool of containers (threads) in this process."""

    def __init__(
        self,
        *,
        name: str,
        handler_path: str,
        settings_dir: Path,
        memory_mb: int,
        timeout_seconds: int,
        region: str = "us-east-1",
        environment: dict[str, str] | None = None,
        concurrency: int = 10,
        log: Callable[[str], None] = stderr_log,
    ):
        self.name = name
        self.handler_path = handler_path
        self.settings_dir = Path(settings_dir)
        self.memory_mb = memory_mb
        self.timeout_seconds = timeout_seconds
        self.region = region
        self.environment = environment or {}
        self.log = log
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"{name}-container")
        self._containers = threading.local()
        self._init_lock = threading.Lock()
        self._initialized = False
        self._saved_environ: dict[str, str] | None = None
        self._entry: Callable | None = None
        self.running = 0  # invocations submitted and not finished
        self._running_lock = threading.Lock()

    # The Lambda runtime's variables, and the stage's own (aws_environment_variables).
    def runtime_environment(self) -> dict[str, str]:
        return {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **self.environment,
        }

    def start(self) -> "StageFunction":
        from zappa.handler import LambdaHandler

        self._saved_environ = dict(os.environ)
        os.environ.update(self.runtime_environment())
        # Zappa's handler is a process-wide singleton that imports `zappa_settings`: start from none.
        sys.modules.pop("zappa_settings", None)
        sys.path.insert(0, str(self.settings_dir))
        LambdaHandler._LambdaHandler__instance = None
        LambdaHandler.settings = None
        self._entry = entry_point(self.handler_path)
        return self

    def stop(self) -> None:
        from zappa.handler import LambdaHandler

        self._pool.shutdown(wait=True, cancel_futures=True)
        LambdaHandler._LambdaHandler__instance = None
        LambdaHandler.settings = None
        sys.modules.pop("zappa_settings", None)
        if str(self.settings_dir) in sys.path:
            sys.path.remove(str(self.settings_dir))
        if self._saved_environ is not None:
            # The handler wrote the stage's remote_env and environment_variables into os.environ.
            os.environ.clear()
            os.environ.update(self._saved_environ)

    def context(self) -> LambdaContext:
        return LambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.memory_mb,
            timeout_ms=self.timeout_seconds * 1000,
            region=self.region,
        )

    def submit(self, event: dict, trigger: str) -> "Future[Invocation]":
        """Invoke on a free container (a new, cold one when all are busy, up to the concurrency)."""
        with self._running_lock:
            self.running += 1
        future = self._pool.submit(self._run, event, trigger)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _future) -> None:
        with self._running_lock:
            self.running -= 1

    def invoke(self, event: dict, trigger: str) -> Invocation:
        return self.submit(event, trigger).result()

    def _initialize(self) -> float:
        """The first cold start in the process: Zappa's handler loads settings, remote_env and the app."""
        from zappa.handler import LambdaHandler

        with self._init_lock:
            if self._initialized:
                return 0.0
            started = time.perf_counter()
            LambdaHandler()
            self._initialized = True
            return (time.perf_counter() - started) * 1000

    def _run(self, event: dict, trigger: str) -> Invocation:
        context = self.context()
        cold = not getattr(self._containers, "warm", False)
        invocation = Invocation(request_id=context.aws_request_id, trigger=trigger, cold=cold)
        self.log(f"START RequestId: {context.aws_request_id} Version: $LATEST\t{trigger}\t{'cold' if cold else 'warm'}")
        started = time.perf_counter()
        try:
            if cold:
                invocation.init_ms = self._initialize()
                self._containers.warm = True
                context.started = time.monotonic()  # init time is not taken from the timeout
                started = time.perf_counter()
            invocation.result = self._entry(event, context)
        except Exception as exc:  # noqa: BLE001 - an unhandled error is what Lambda reports, not ours to raise
            invocation.error = exc
            formatted = "".join(traceback.format_exception(exc)).rstrip()
            self.log(f"[ERROR] {type(exc).__name__}: {exc}\n{formatted}")
        invocation.duration_ms = (time.perf_counter() - started) * 1000
        if invocation.duration_ms > self.timeout_seconds * 1000:
            # Lambda would have stopped it here; a thread cannot be stopped, so its late result is dropped.
            invocation.timed_out = True
            self.log(f"{context.aws_request_id} Task timed out after {self.timeout_seconds:.2f} seconds")
        self.log(f"END RequestId: {context.aws_request_id}")
        self.log(report_line(invocation, self.memory_mb))
        return invocation


def report_line(invocation: Invocation, memory_mb: int) -> str:
    max_used = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # the process's, in MB (Linux: KB)
    line = (
        f"REPORT RequestId: {invocation.request_id}\tDuration: {invocation.duration_ms:.2f} ms\t"
        f"Billed Duration: {math.ceil(invocation.duration_ms)} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {max_used} MB"
    )
    if invocation.cold:
        line += f"\tInit Duration: {invocation.init_ms:.2f} ms"
    return line
