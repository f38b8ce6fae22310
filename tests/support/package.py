"""Builds a stage's zip as `bin/package` does and runs it in a fresh interpreter that sees only what Lambda would."""

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement

# The project's own virtualenv: the one running this code (tests and bench run from it).
VENV = Path(sys.executable).parent.parent
PYTHON_DIR = f"python{sys.version_info.major}.{sys.version_info.minor}"
SITE_PACKAGES = VENV / "lib" / PYTHON_DIR / "site-packages"
REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.txt"

# What the Lambda Python runtime itself puts on sys.path next to /var/task: boto3 and its dependencies.
LAMBDA_RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")


@dataclass
class Package:
    zip_path: Path
    root: Path  # the zip unpacked, standing in for /var/task

    @property
    def zipped_bytes(self) -> int:
        return self.zip_path.stat().st_size

    @property
    def unzipped_bytes(self) -> int:
        with zipfile.ZipFile(self.zip_path) as archive:
            return sum(info.file_size for info in archive.infolist())


def _clean_env(extra: dict) -> dict:
    """The caller's environment without Django/AWS/Python settings that would leak into a child, plus extra."""
    dropped = ("DJANGO_", "AWS_", "PYTHON", "VIRTUAL_ENV", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return env | extra


def build_package(
    stage: str, *, project_dir: Path, out_zip: Path, aws_env: dict, bytecode: bool = True, settings_file=None
) -> Path:
    """The stage's deployable zip as `bin/package STAGE` builds it: see build_artifacts."""
    return Path(
        build_artifact(stage, project_dir=project_dir, out_zip=out_zip, aws_env=aws_env, bytecode=bytecode)["zip_path"]
    )


def build_artifact(
    stage: str, *, project_dir: Path, out_zip: Path, aws_env: dict, bytecode: bool = True, **options
) -> dict:
    return build_artifacts({stage: out_zip}, project_dir=project_dir, aws_env=aws_env, bytecode=bytecode, **options)[
        stage
    ]


def build_artifacts(
    outputs: dict[str, Path],
    *,
    project_dir: Path,
    aws_env: dict,
    bytecode: bool = True,
    runtime_paths: tuple[str, ...] = (),
    requirements: Path | None = None,
) -> dict:
    """Build each stage's zip as `bin/package STAGE` does (tools/artifact.py), all at once; stage -> its report.

    Each build is its own process (compileall forks workers: never from a process running threads)
    in the project's venv. aws_env must point boto3 at moto: packaging needs no AWS, and a stray
    call must never reach it. Every other connection goes to a proxy that refuses it: Zappa's
    manylinux-wheel lookups on PyPI then fail at once (instead of timing out) and it ships the
    venv's own (Linux) wheels. The runtime-only venv they package is created first, once (cached).
    runtime_paths and requirements are bin/package's for another project than Cue (the bench's bare one).
    """
    from tools.artifact import runtime_venv
    from tools.local_aws import OutsideGuard

    runtime_venv(requirements or REQUIREMENTS)
    with OutsideGuard() as guard:
        env = _clean_env(aws_env) | guard.env()
        builds = {}
        for stage, out_zip in outputs.items():
            command = [sys.executable, "-m", "tools.artifact", stage, "-o", str(out_zip), "--json"]
            command += ["--project-dir", str(project_dir)] + ([] if bytecode else ["--no-bytecode"])
            command += [f"--runtime-path={path}" for path in runtime_paths]
            command += ["--requirements", str(requirements)] if requirements else []
            builds[stage] = subprocess.Popen(
                command,
                cwd=Path(__file__).resolve().parents[2],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        reports = {}
        for stage, process in builds.items():
            out, err = process.communicate(timeout=900)
            if process.returncode != 0:
                raise RuntimeError(f"bin/package {stage} failed:\n{out[-3000:]}\n{err[-3000:]}")
            reports[stage] = json.loads(out.splitlines()[-1])
    return reports


def unpack(zip_path: Path, dest: Path) -> Package:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
    return Package(zip_path=zip_path, root=dest)


def lambda_runtime_dir(dest: Path) -> Path:
    """A folder holding the libraries the Lambda runtime provides (copied from the venv, bytecode included)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in LAMBDA_RUNTIME_PACKAGES:
        source = SITE_PACKAGES / name
        if source.is_dir():
            shutil.copytree(source, dest / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / name)
    return dest


# ------------------------------------------------------------------------------
# Which installed distributions are runtime requirements and which are only for development
# ------------------------------------------------------------------------------
def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(site: Path = SITE_PACKAGES) -> dict[str, importlib.metadata.Distribution]:
    return {normalise(d.metadata["Name"]): d for d in importlib.metadata.distributions(path=[str(site)])}


def installed_distributions() -> set[str]:
    return set(_installed())


def runtime_distributions(requirements: Path, site: Path = SITE_PACKAGES) -> set[str]:
    """requirements.txt and everything it pulls in, as installed in the venv whose site-packages is site."""
    installed = _installed(site)
    wanted: set[str] = set()
    pending = [
        normalise(Requirement(line).name)
        for line in requirements.read_text().splitlines()
        if line.strip() and not line.lstrip().startswith(("#", "-"))
    ]
    while pending:
        name = pending.pop()
        if name in wanted or name not in installed:
            continue
        wanted.add(name)
        for spec in installed[name].requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(normalise(requirement.name))
    return wanted


def top_level_names(distribution: str, site: Path = SITE_PACKAGES) -> set[str]:
    """The file and folder names a distribution installs at the top of site-packages (its .dist-info aside)."""
    names = set()
    for file in _installed(site)[distribution].files or []:
        first = Path(file).parts[0]
        if first not in ("..", "__pycache__") and not first.endswith(".dist-info"):
            names.add(first)
    return names


def module_files(distribution: str) -> list[str]:
    """The importable files (.py and extension modules) a distribution installs, relative to site-packages."""
    files = []
    for file in _installed()[distribution].files or []:
        path = str(file)
        if path.startswith("..") or "__pycache__" in path:
            continue
        if path.endswith((".py", ".so")):
            files.append(path)
    return files


# ------------------------------------------------------------------------------
# A fresh interpreter that sees only the package and the Lambda runtime's libraries
# ------------------------------------------------------------------------------
# Runs with `python -S -B`: no site-packages at all (-S) and no bytecode written into the
# package (-B: /var/task is read-only on Lambda, so nothing is cached between cold starts).
# Protocol: one JSON message per line on stdin, one JSON answer per line on the original
# stdout; whatever else the handler prints goes to stderr.
_CHILD = r"""
import time
_top = time.monotonic()
import json, os, sys
channel = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.stdout.reconfigure(line_buffering=True)


class Context:
    def __init__(self, function_name, aws_request_id, memory_limit_in_mb=1024, timeout_ms=30000):
        self.function_name = function_name
        self.aws_request_id = aws_request_id
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + function_name
        self.log_group_name = "/aws/lambda/" + function_name
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def ms(seconds):
    return round(seconds * 1000, 2)


spawned = float(os.environ["FRESH_LAMBDA_SPAWNED_AT"])
entry_module, _, entry_function = os.environ["FRESH_LAMBDA_HANDLER"].rpartition(".")
before = time.monotonic()
import importlib
lambda_handler = getattr(importlib.import_module(entry_module), entry_function)
imported = time.monotonic()
timings = {"startup_ms": ms(_top - spawned), "handler_import_ms": ms(imported - before)}

for line in sys.stdin:
    message = json.loads(line)
    if "probe" in message:
        answer = {}
        for name in message["probe"]:
            try:
                module = __import__(name)
                answer[name] = getattr(module, "__file__", None) or "namespace"
            except ImportError:
                answer[name] = None
        channel.write(json.dumps({"probe": answer}) + "\n")
    elif "loaded" in message:
        channel.write(json.dumps({"loaded": {name: name in sys.modules for name in message["loaded"]}}) + "\n")
    elif "gc" in message:
        import gc
        channel.write(json.dumps({"gc": {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}}) + "\n")
    elif "metadata" in message:
        import importlib.metadata
        versions = {}
        for name in message["metadata"]:
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                versions[name] = None
        channel.write(json.dumps({"metadata": versions}) + "\n")
    else:
        started = time.monotonic()
        result = lambda_handler(message["event"], Context(**message["context"]))
        done = time.monotonic()
        reply = {"result": result, "call_ms": ms(done - started), "since_top_ms": ms(done - _top)}
        channel.write(json.dumps(reply | timings) + "\n")
        timings = {}
    channel.flush()
"""


class FreshLambda:
    """One cold Lambda container: a new interpreter importing the function's handler, fed events one by one.

    `handler` is what the Lambda function's configuration names (Zappa sets it from the stage's
    `lambda_handler`; without one, the zip-root handler.py's `handler.lambda_handler`).
    """

    def __init__(
        self,
        package_root: Path,
        runtime_dir: Path,
        env: dict,
        function_name: str,
        python_flags=(),
        handler: str = "handler.lambda_handler",
    ):
        self.package_root = package_root
        self.handler = handler
        self.python_flags = tuple(python_flags)
        self.runtime_dir = runtime_dir
        self.env = env
        self.function_name = function_name
        self.process: subprocess.Popen | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in __exit__
        self.spawned_at = 0.0

    def __enter__(self) -> "FreshLambda":
        self.spawned_at = time.monotonic()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": f"{self.package_root}{os.pathsep}{self.runtime_dir}",
            "PYTHONNOUSERSITE": "1",
            "LAMBDA_TASK_ROOT": str(self.package_root),
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{PYTHON_DIR}",
            "FRESH_LAMBDA_SPAWNED_AT": repr(self.spawned_at),
            "FRESH_LAMBDA_HANDLER": self.handler,
        } | self.env
        self.process = subprocess.Popen(
            [sys.executable, "-S", "-B", *self.python_flags, "-c", _CHILD],
            cwd=self.package_root,  # Lambda's working directory is /var/task
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read()

    def _ask(self, message: dict) -> dict:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            self.process.wait(timeout=30)
            raise RuntimeError(f"the fresh interpreter died (exit {self.process.returncode}):\n{self.stderr()[-5000:]}")
        return json.loads(line)

    def invoke(self, event: dict) -> dict:
        """The handler's answer, with the child's timings and the parent's wall clock (spawn to answer) added."""
        context = {"function_name": self.function_name, "aws_request_id": str(uuid.uuid4())}
        answer = self._ask({"event": event, "context": context})
        answer["wall_ms"] = round((time.monotonic() - self.spawned_at) * 1000, 2)
        return answer

    def probe(self, *modules: str) -> dict[str, str | None]:
        """Where each module imports from inside the child, or None when it cannot be imported."""
        return self._ask({"probe": list(modules)})["probe"]

    def loaded(self, *modules: str) -> dict[str, bool]:
        """Whether each module has been imported in the child so far (without importing it)."""
        return self._ask({"loaded": list(modules)})["loaded"]

    def gc_state(self) -> dict:
        """The child's cyclic garbage collector: enabled, and how many objects are frozen out of it."""
        return self._ask({"gc": True})["gc"]

    def metadata(self, *distributions: str) -> dict[str, str | None]:
        """Each distribution's version as importlib.metadata finds it inside the child, or None."""
        return self._ask({"metadata": list(distributions)})["metadata"]
