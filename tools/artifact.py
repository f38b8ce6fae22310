"""The zip operators deploy: `zappa package STAGE`, trimmed, with precompiled bytecode, re-zipped reproducibly.

    bin/package STAGE [-s SETTINGS_FILE] [-o OUT.zip] [--no-bytecode]
    zappa deploy STAGE -z OUT.zip        # or: zappa update STAGE -z OUT.zip

What goes in is decided by allow-list, not by trimming the developer's checkout:

- **Libraries: a runtime-only virtualenv.** Zappa zips the virtualenv it runs in. bin/package runs it
  from a virtualenv holding what requirements.txt installs and nothing else (no test tool, no
  developer's extra), created once per requirements.txt (and Python) under `.cache/runtime-venv/<hash>`
  (ignored by git) and reused until requirements.txt changes. zappa_settings.json's `exclude` then
  only names what the function itself never needs among those (what Lambda provides, installers,
  Zappa's deploy-time CLI dependencies).
- **Cue's code: its runtime folders, as git tracks them.** Zappa also zips the folder it runs in:
  bin/package runs it from a fresh folder holding only RUNTIME_PATHS (apps/, project/, manage.py),
  and of those only the files git tracks (their working-tree contents). An untracked `.env`, a key
  (`*.pem`), a local database, tests/, tools/, bench/ or docs/ are never there to be zipped; untracked
  files inside the runtime folders are named in the report (add them to git to ship them). Outside a
  git checkout (the bench's bare project) every file of the runtime paths but bytecode is taken.

What it changes in Zappa's zip, and why each is safe:

- **Other languages' translations.** Cue is English-only (LANGUAGE_CODE en-us, no LocaleMiddleware,
  nothing activates another language), so every gettext `locale/<lang>` folder but English goes;
  English stays (Django refuses to start without the default language's catalog).
- **Stale metadata.** A `*.dist-info` whose distribution ships no module (boto3, click, pip...:
  left out by `exclude`) goes. Packages that read their own metadata (simplejwt) ship,
  so theirs stays; a stale boto3 record would even shadow the runtime's real one.
- **Symbol tables.** An extension module that carries a symbol table (`.symtab`: cryptography's
  Rust library, nh3, rpds, PyYAML's...) has it removed with `strip --strip-unneeded`, DWARF debug
  sections with it: the dynamic symbols Python and the loader use stay; a native crash's backtrace
  shows addresses instead of names in those libraries. Libraries without one (the
  auditwheel-patched ones psycopg2-binary vendors) are not rewritten.
- **Bytecode.** Lambda's /var/task is read-only, so without `.pyc` every cold start compiles every
  module it imports. `compileall` writes them with `unchecked-hash` (valid whatever the files'
  timestamps; the artifact never changes) and `/var/task/...` as their file names. The venv's
  Python must be the stage's runtime's minor version.
- **Sourceless third-party code.** In what installed distributions put in the tree (the top-level
  names their `RECORD` lists) each module is shipped as its bytecode alone, as a legacy `.pyc`
  where the `.py` was (`compileall -b`'s layout): source and bytecode would be both shipped
  otherwise, for code nobody edits in /var/task. A traceback through such a module still names
  its file (`/var/task/django/...py`), line and function, without the line's text. Cue's own code
  and Zappa's generated files (everything no `RECORD` claims) keep their source beside
  `__pycache__`. The `RECORD`s go too (they list the replaced files; nothing at run time reads
  them); the rest of each `*.dist-info` stays.

The zip is written with sorted names, fixed dates and modes, and Zappa's `package_info.json` (a
random uuid, the build's time and user) is rewritten to name what was built instead: a uuid
derived from the contents, the git commit and its time. Built twice from the same commit and
venv, the zip has the same bytes (so the same CodeSha256 on Lambda).
"""

import argparse
import compileall
import dataclasses
import fcntl
import hashlib
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tools.stages import absolute_policies

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_TASK_ROOT = "/var/task"
# Language folders kept in every gettext `locale` folder: English (LANGUAGE_CODE en-us looks up en_US, then en).
KEEP_LANGUAGES = frozenset({"en", "en_US"})
# The earliest date a zip entry can carry: no build's clock leaks into the artifact.
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
MB = 1_000_000
# What ships of a checkout: Cue's runtime folders and files (everything else, tools/ included, never does).
RUNTIME_PATHS = ("apps", "project", "manage.py")
# Where runtime-only virtualenvs are kept, one per requirements.txt and Python (ignored by git).
RUNTIME_VENV_CACHE = ROOT / ".cache" / "runtime-venv"


class ArtifactError(Exception):
    """A clear, operator-facing reason why no artifact was written."""


@dataclass
class Artifact:
    stage: str
    zip_path: Path
    bytecode: bool
    zappa_zipped_bytes: int = 0
    removed_locales: list[str] = field(default_factory=list)
    removed_dist_info: list[str] = field(default_factory=list)
    stripped: list[str] = field(default_factory=list)
    compiled: int = 0
    sourceless: int = 0
    runtime_venv: str = ""
    left_out_untracked: list[str] = field(default_factory=list)
    package_info: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def zipped_bytes(self) -> int:
        return self.zip_path.stat().st_size


# ------------------------------------------------------------------------------
# Zappa's own package
# ------------------------------------------------------------------------------
def stage_config(stage: str, settings_file: Path) -> dict:
    """The stage's settings after Zappa's `extends` (a shallow update, parent first)."""
    try:
        stages = json.loads(settings_file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {settings_file}: {exc}") from exc
    if stage not in stages:
        raise ArtifactError(f"no stage {stage!r} in {settings_file.name} (stages: {', '.join(sorted(stages))})")
    config = stages[stage]
    if "extends" in config:
        return {**stage_config(config["extends"], settings_file), **{k: v for k, v in config.items() if k != "extends"}}
    return dict(config)


def memory_tmpdir(path: str = "/dev/shm", room: int = 2 * 1024**3) -> str | None:  # noqa: S108 - mkdtemp inside
    """A RAM-backed temporary folder with room, if this machine has one."""
    # Zappa copies the whole virtualenv into a temporary folder to zip it: on disk, most of a build's time.
    try:
        if os.access(path, os.W_OK) and shutil.disk_usage(path).free > room:
            return path
    except OSError:
        pass
    return None


def requirements_key(requirements: Path) -> str:
    """What a runtime virtualenv is built from: requirements.txt's bytes and this Python's version and platform."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(f"{sys.implementation.cache_tag} {sys.platform} {os.uname().machine}".encode())
    return digest.hexdigest()[:16]


def runtime_venv(requirements: Path = ROOT / "requirements.txt", *, cache: Path = RUNTIME_VENV_CACHE) -> Path:
    """A virtualenv holding what requirements.txt installs and nothing else, created once and reused.

    Keyed by requirements_key: a changed requirements.txt gets a new one. Builds running at once
    (three stages, two worktrees' suites) wait on one lock; a folder without its `.complete` mark
    (an interrupted build) is built again.
    """
    venv = cache / requirements_key(requirements)
    done = venv / ".complete"
    if done.is_file():
        return venv
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        python = getattr(sys, "_base_executable", sys.executable)
        for command in (
            [python, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-input", "-r", str(requirements)],
        ):
            result = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603
            if result.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise ArtifactError(
                    f"{' '.join(command[:4])} ... failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
                )
        done.write_text(requirements.read_text())
    return venv


# What Zappa writes at the zip's top beside the project and the libraries (an empty __init__.py, as in every
# folder of the project without one), and bin/package's stamp.
ZAPPA_GENERATED = frozenset(
    {"handler.py", "zappa_settings.py", "django_zappa_app.py", "__init__.py", "package_info.json"}
)


def site_packages(venv: Path) -> Path:
    return venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def distribution_top_levels(venv: Path) -> dict[str, str]:
    """Each top-level name the venv's installed distributions put in site-packages (their RECORDs) -> distribution."""
    import importlib.metadata

    names = {}
    for distribution in importlib.metadata.distributions(path=[str(site_packages(venv))]):
        for file in distribution.files or []:
            first = file.parts[0]
            if first not in ("..", "__pycache__"):
                names[first] = distribution.metadata["Name"]
    return names


def allowed_top_levels(venv: Path, runtime_paths: tuple[str, ...] = RUNTIME_PATHS) -> set[str]:
    """What may sit at the top of a zip: the runtime venv's distributions, Cue's runtime paths, Zappa's files."""
    return set(distribution_top_levels(venv)) | set(runtime_paths) | ZAPPA_GENERATED | {"__pycache__"}


def _tracked_files(project_dir: Path, paths: tuple[str, ...]) -> list[str] | None:
    """The files git tracks under paths (relative names), or None when project_dir is not a git checkout's top."""
    top = _git(project_dir, "rev-parse", "--show-toplevel")
    if top is None or Path(top).resolve() != project_dir.resolve():
        return None
    listed = _git(project_dir, "ls-files", "-z", "--cached", "--", *paths) or ""
    return sorted(name for name in listed.split("\0") if name)


def _untracked_files(project_dir: Path, paths: tuple[str, ...]) -> list[str]:
    listed = _git(project_dir, "ls-files", "-z", "--others", "--exclude-standard", "--", *paths) or ""
    return sorted(name for name in listed.split("\0") if name)


def _is_bytecode(name: str) -> bool:
    return name.endswith((".pyc", ".pyo")) or "__pycache__" in Path(name).parts


def runtime_tree(project_dir: Path, dest: Path, paths: tuple[str, ...] = RUNTIME_PATHS) -> list[str]:
    """Copy the runtime paths of project_dir into dest (git-tracked files only in a checkout); the untracked left out.

    dest becomes the folder Zappa packages: nothing of the checkout outside these paths can reach the zip.
    """
    missing = [path for path in paths if not (project_dir / path).exists()]
    if missing:
        raise ArtifactError(f"runtime paths not found in {project_dir}: {missing}")
    tracked = _tracked_files(project_dir, paths)
    if tracked is None:
        names = []
        for path in paths:
            source = project_dir / path
            found = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
            names += [p.relative_to(project_dir).as_posix() for p in found]
        left_out: list[str] = []
    else:
        names = tracked
        left_out = [name for name in _untracked_files(project_dir, paths) if not _is_bytecode(name)]
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = project_dir / name
        if _is_bytecode(name) or not source.is_file():  # bytecode is bin/package's to write; deleted, not committed
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest / name)
    return left_out


def zappa_package(
    stage: str,
    out_zip: Path,
    *,
    project_dir: Path = ROOT,
    settings_file: Path | None = None,
    env: dict | None = None,
    venv: Path | None = None,
) -> Path:
    """`zappa package STAGE -o out_zip` run from project_dir with venv's Zappa (default: this Python's virtualenv)."""
    venv = venv or Path(sys.executable).parent.parent
    zappa = venv / "bin" / "zappa"
    if not zappa.exists():
        raise ArtifactError(f"{venv} has no zappa: requirements.txt installs it")
    env = dict(os.environ if env is None else env)
    env |= {"VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"}
    if memory_tmpdir() and "TMPDIR" not in env:
        env["TMPDIR"] = memory_tmpdir()
    command = [str(zappa), "package", stage, "-o", str(out_zip)]
    if settings_file is not None:
        command += ["-s", str(settings_file)]
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - the venv's own zappa
        command, cwd=project_dir, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if result.returncode != 0 or not out_zip.is_file():
        raise ArtifactError(f"zappa package {stage} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return out_zip


# ------------------------------------------------------------------------------
# Trimming the unpacked tree
# ------------------------------------------------------------------------------
def prune_locales(root: Path, keep: frozenset[str] = KEEP_LANGUAGES) -> list[str]:
    """Remove each `locale/<lang>` folder holding translations (LC_MESSAGES) of a language not kept."""
    removed = []
    for locale in sorted(p for p in root.rglob("locale") if p.is_dir()):
        for language in sorted(locale.iterdir()):
            if language.is_dir() and language.name not in keep and (language / "LC_MESSAGES").is_dir():
                shutil.rmtree(language)
                removed.append(str(language.relative_to(root)))
    return removed


def _record_top_levels(dist_info: Path) -> set[str]:
    """The top-level names a distribution installed (its RECORD), its own metadata folders aside.

    `.pth` files do not count: outside site-packages (/var/task is not one) nothing reads them.
    """
    names = set()
    for line in (dist_info / "RECORD").read_text().splitlines():
        first = line.split(",", 1)[0].split("/", 1)[0]
        if first and first not in ("..", "__pycache__") and not first.endswith((".dist-info", ".data", ".pth")):
            names.add(first)
    return names


def prune_stale_dist_info(root: Path) -> list[str]:
    """Remove each `*.dist-info` whose distribution has none of its top-level files or folders in the tree."""
    removed = []
    for dist_info in sorted(root.glob("*.dist-info")):
        if not (dist_info / "RECORD").is_file():
            continue  # nothing says what it installed: keep it
        names = _record_top_levels(dist_info)
        if names and not any((root / name).exists() for name in names):
            shutil.rmtree(dist_info)
            removed.append(dist_info.name)
    return removed


def _is_shared_object(path: Path) -> bool:
    return path.suffix == ".so" or ".so." in path.name


def elf_section_names(data: bytes) -> set[str]:
    """The section names of a 64-bit little-endian ELF file (Lambda's x86_64 and arm64), or an empty set."""
    if data[:6] != b"\x7fELF\x02\x01" or len(data) < 64:
        return set()
    offset = int.from_bytes(data[0x28:0x30], "little")
    entry_size = int.from_bytes(data[0x3A:0x3C], "little")
    count = int.from_bytes(data[0x3C:0x3E], "little")
    names_index = int.from_bytes(data[0x3E:0x40], "little")
    if not offset or not entry_size or names_index >= count or offset + count * entry_size > len(data):
        return set()
    headers = [data[offset + i * entry_size : offset + (i + 1) * entry_size] for i in range(count)]
    names_at = int.from_bytes(headers[names_index][0x18:0x20], "little")
    names = set()
    for header in headers:
        start = names_at + int.from_bytes(header[:4], "little")
        names.add(data[start : data.index(b"\0", start)].decode("ascii", "replace"))
    return names


def strip_symbols(root: Path) -> list[str]:
    """`strip --strip-unneeded` each shared object that has a symbol table or debug sections; [] without binutils."""
    strip = shutil.which("strip")
    if strip is None:
        return []
    stripped = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and _is_shared_object(p)):
        if not elf_section_names(path.read_bytes()) & {".symtab", ".debug_info"}:
            continue
        result = subprocess.run(  # noqa: S603
            [strip, "--strip-unneeded", str(path)], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise ArtifactError(f"strip --strip-unneeded {path.relative_to(root)} failed: {result.stderr.strip()}")
        stripped.append(str(path.relative_to(root)))
    return stripped


def compile_bytecode(root: Path, workers: int = 0) -> int:
    """Write `__pycache__/*.cpython-3XY.pyc` beside every module, named as Lambda will find them."""
    before = sum(1 for _ in root.rglob("*.pyc"))
    ok = compileall.compile_dir(
        root,
        quiet=2,
        workers=workers,
        stripdir=str(root),
        prependdir=LAMBDA_TASK_ROOT,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise ArtifactError("compileall failed: a module in the package does not compile")
    return sum(1 for _ in root.rglob("*.pyc")) - before


def third_party_names(root: Path) -> set[str]:
    """The top-level names installed distributions put in the tree (their RECORDs), present in it."""
    names = set()
    for dist_info in root.glob("*.dist-info"):
        if (dist_info / "RECORD").is_file():
            names |= _record_top_levels(dist_info)
    return {name for name in names if (root / name).exists()}


def drop_sources(root: Path, names: set[str]) -> int:
    """Under each top-level name, replace every `x.py` by its compiled `__pycache__` bytecode moved to `x.pyc`."""
    cache_tag = sys.implementation.cache_tag
    replaced = 0
    for name in sorted(names):
        top = root / name
        sources = [top] if top.is_file() else sorted(top.rglob("*.py"))
        for source in (p for p in sources if p.suffix == ".py" and p.is_file()):
            compiled = source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
            if not compiled.is_file():
                raise ArtifactError(f"{source.relative_to(root)} has no bytecode to ship instead")
            compiled.replace(source.with_suffix(".pyc"))
            source.unlink()
            replaced += 1
        for cache in sorted((top.rglob("__pycache__") if top.is_dir() else ()), reverse=True):
            if not any(cache.iterdir()):
                cache.rmdir()
    return replaced


def drop_records(root: Path) -> list[str]:
    """Remove each `*.dist-info/RECORD`: it lists files and hashes the sourceless tree no longer has."""
    records = sorted(root.glob("*.dist-info/RECORD"))
    for record in records:
        record.unlink()
    return [str(record.relative_to(root)) for record in records]


@dataclass
class Bytecode:
    compiled: int  # modules precompiled
    sourceless: int  # of them, third-party modules shipped as bytecode alone


def add_bytecode(root: Path, workers: int = 0) -> Bytecode:
    """bin/package's bytecode step: compile every module, then ship third-party ones without their source."""
    names = third_party_names(root)  # before the RECORDs go
    compiled = compile_bytecode(root, workers=workers)
    sourceless = drop_sources(root, names)
    drop_records(root)
    return Bytecode(compiled=compiled, sourceless=sourceless)


def _git(project_dir: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    result = subprocess.run([git, "-C", str(project_dir), *args], capture_output=True, text=True, check=False)  # noqa: S603
    return (result.stdout.strip() or None) if result.returncode == 0 else None


def tree_digest(root: Path, *, leave_out: tuple[str, ...] = ()) -> str:
    """SHA-256 over every file's relative name and bytes, in name order."""
    digest = hashlib.sha256()
    for path in sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()):
        name = path.relative_to(root).as_posix()
        if name in leave_out:
            continue
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def stamp_package_info(root: Path, project_dir: Path) -> dict:
    """Replace Zappa's build stamp (random uuid, clock, user) by one the contents and the commit decide."""
    commit = _git(project_dir, "rev-parse", "HEAD")
    committed_at = _git(project_dir, "log", "-1", "--format=%ct") if commit else None
    info = {
        "uuid": str(
            uuid.uuid5(uuid.NAMESPACE_URL, "cue-artifact:" + tree_digest(root, leave_out=("package_info.json",)))
        ),
        "build_time": os.environ.get("SOURCE_DATE_EPOCH") or committed_at or "0",
        "build_platform": sys.platform,
        "build_user": "bin/package",
        "commit": commit,
        # Uncommitted changes were packaged too: the commit alone does not say what this is.
        "dirty": bool(_git(project_dir, "status", "--porcelain", "--untracked-files=no")) if commit else None,
    }
    (root / "package_info.json").write_text(json.dumps(info, indent=4) + "\n")
    return info


def write_zip(root: Path, out_zip: Path, compresslevel: int = 9) -> Path:
    """Zip the tree reproducibly: sorted names, ZIP_EPOCH dates, 0755 like Zappa's (Lambda needs others to read).

    Deflate at level 9: about 1% smaller than zlib's default 6, for a second more of build.
    """
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix())
    tmp = out_zip.with_name(out_zip.name + ".part")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=compresslevel) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=ZIP_EPOCH)
            info.create_system = 3  # Unix, so the mode below is honoured
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=compresslevel)
    tmp.replace(out_zip)
    return out_zip


# ------------------------------------------------------------------------------
# The whole build
# ------------------------------------------------------------------------------
def check_runtime(config: dict) -> None:
    """Bytecode is only read by the Python minor version that wrote it: the venv's must be the stage's runtime."""
    runtime = config.get("runtime", "")
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        raise ArtifactError(f"the stage runs {runtime or 'an unnamed runtime'} but this virtualenv is {here}")


def build(
    stage: str,
    out_zip: Path,
    *,
    project_dir: Path = ROOT,
    settings_file: Path | None = None,
    bytecode: bool = True,
    env: dict | None = None,
    runtime_paths: tuple[str, ...] = RUNTIME_PATHS,
    requirements: Path | None = None,
) -> Artifact:
    settings_path = (settings_file or project_dir / "zappa_settings.json").resolve()
    config = stage_config(stage, settings_path)
    if bytecode:
        check_runtime(config)
    artifact = Artifact(stage=stage, zip_path=out_zip, bytecode=bytecode)
    started = time.monotonic()
    venv = runtime_venv(requirements or project_dir / "requirements.txt")
    artifact.runtime_venv = str(venv)
    artifact.seconds["runtime venv"] = time.monotonic() - started
    with tempfile.TemporaryDirectory(prefix=f"artifact-{stage}-", dir=memory_tmpdir()) as tmp:
        work = Path(tmp)
        started = time.monotonic()
        tree = work / "project"
        artifact.left_out_untracked = runtime_tree(project_dir, tree, runtime_paths)
        # Zappa runs in the copied tree: the settings' policy files are named from the checkout instead.
        settings_copy = work / "zappa_settings.json"
        settings_copy.write_text(
            json.dumps(absolute_policies(json.loads(settings_path.read_text()), settings_path.parent))
        )
        raw = zappa_package(
            stage, work / "zappa.zip", project_dir=tree, settings_file=settings_copy, env=env, venv=venv
        )
        artifact.zappa_zipped_bytes = raw.stat().st_size
        artifact.seconds["zappa package"] = time.monotonic() - started

        started = time.monotonic()
        root = work / "task"
        with zipfile.ZipFile(raw) as archive:
            archive.extractall(root)
        raw.unlink()
        artifact.removed_locales = prune_locales(root)
        artifact.removed_dist_info = prune_stale_dist_info(root)
        artifact.stripped = strip_symbols(root)
        artifact.seconds["trim"] = time.monotonic() - started

        if bytecode:
            started = time.monotonic()
            bytecode_step = add_bytecode(root)
            artifact.compiled, artifact.sourceless = bytecode_step.compiled, bytecode_step.sourceless
            artifact.seconds["compileall"] = time.monotonic() - started

        started = time.monotonic()
        artifact.package_info = stamp_package_info(root, project_dir)
        out_zip.parent.mkdir(parents=True, exist_ok=True)
        write_zip(root, out_zip)
        artifact.seconds["zip"] = time.monotonic() - started
    return artifact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/package", description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("-s", "--settings-file", type=Path, help="a Zappa settings file (a feature-stage overlay)")
    parser.add_argument("-o", "--output", type=Path, help="the zip to write (default dist/cue-STAGE.zip)")
    parser.add_argument("--no-bytecode", action="store_true", help="leave out the precompiled .pyc")
    parser.add_argument("--project-dir", type=Path, default=ROOT, help=argparse.SUPPRESS)  # the bench's bare project
    parser.add_argument("--runtime-path", action="append", help=argparse.SUPPRESS)  # its runtime folders
    parser.add_argument("--requirements", type=Path, help=argparse.SUPPRESS)  # and its requirements
    parser.add_argument("--json", action="store_true", help="print what was done as one JSON object")
    args = parser.parse_args(argv)
    out = (args.output or args.project_dir / "dist" / f"cue-{args.stage}.zip").resolve()
    try:
        artifact = build(
            args.stage,
            out,
            project_dir=args.project_dir.resolve(),
            settings_file=args.settings_file,
            bytecode=not args.no_bytecode,
            runtime_paths=tuple(args.runtime_path or RUNTIME_PATHS),
            requirements=args.requirements,
        )
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(dataclasses.asdict(artifact) | {"zip_path": str(out), "zipped_bytes": artifact.zipped_bytes}))
        return 0
    steps = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in artifact.seconds.items())
    print(f"{out}: {artifact.zipped_bytes / MB:.1f} MB (zappa package: {artifact.zappa_zipped_bytes / MB:.1f} MB)")
    print(
        f"removed {len(artifact.removed_locales)} translation folders, "
        f"{len(artifact.removed_dist_info)} stale dist-info; symbols stripped from {len(artifact.stripped)} "
        f"libraries; {artifact.compiled} modules precompiled, {artifact.sourceless} of them third-party "
        f"shipped without source; {steps}"
    )
    if artifact.left_out_untracked:
        print(f"left out, not tracked by git: {', '.join(artifact.left_out_untracked)}")
    flag = f" -s {args.settings_file}" if args.settings_file else ""
    print(f"deploy with: zappa update {args.stage}{flag} -z {out}")
    print("(a stage's first deploy, or new extra_permissions: a plain zappa deploy/update first; docs/operations.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
