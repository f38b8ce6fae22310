"""bin/package's steps on small trees: what is trimmed, what is kept, bytecode Lambda uses as is, a reproducible zip."""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.package import SITE_PACKAGES
from tools.artifact import (
    ArtifactError,
    add_bytecode,
    check_runtime,
    compile_bytecode,
    elf_section_names,
    main,
    prune_locales,
    prune_stale_dist_info,
    requirements_key,
    runtime_tree,
    stage_config,
    stamp_package_info,
    strip_symbols,
    write_zip,
)


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def dist_info(root: Path, name: str, *installed: str) -> Path:
    folder = root / f"{name}-1.0.dist-info"
    record = [f"{path},sha256=x,1" for path in installed] + [f"{folder.name}/METADATA,,", f"{folder.name}/RECORD,,"]
    write(folder / "METADATA", f"Name: {name}\nVersion: 1.0\n")
    write(folder / "RECORD", "\n".join(record) + "\n")
    return folder


def test_only_english_translation_folders_stay(tmp_path):
    for language in ("en", "fr", "pt_BR"):
        write(tmp_path / f"django/conf/locale/{language}/LC_MESSAGES/django.mo")
        write(tmp_path / f"django/conf/locale/{language}/formats.py")
        write(tmp_path / f"rest_framework/locale/{language}/LC_MESSAGES/django.mo")
    write(tmp_path / "django/conf/locale/__init__.py", "LANG_INFO = {}")
    write(tmp_path / "somepkg/locale/helpers.py")  # a module folder named locale, not translations
    write(tmp_path / "somepkg/locale/data/table.json")

    removed = prune_locales(tmp_path)

    assert sorted(removed) == [
        "django/conf/locale/fr",
        "django/conf/locale/pt_BR",
        "rest_framework/locale/fr",
        "rest_framework/locale/pt_BR",
    ]
    assert (tmp_path / "django/conf/locale/en/formats.py").is_file()
    assert (tmp_path / "django/conf/locale/__init__.py").is_file()
    assert (tmp_path / "somepkg/locale/data/table.json").is_file()


def test_only_metadata_of_distributions_that_ship_nothing_goes(tmp_path):
    write(tmp_path / "jwt/__init__.py")
    write(tmp_path / "typing_extensions.py")
    write(tmp_path / "distutils-precedence.pth")
    kept = [dist_info(tmp_path, "pyjwt", "jwt/__init__.py"), dist_info(tmp_path, "typing_extensions", "x.py")]
    kept[1].joinpath("RECORD").write_text("typing_extensions.py,sha256=x,1\n")
    stale = [
        dist_info(tmp_path, "boto3", "boto3/__init__.py", "../../../bin/boto3"),
        dist_info(tmp_path, "setuptools", "setuptools/__init__.py", "distutils-precedence.pth"),
    ]
    unknown = tmp_path / "mystery-1.0.dist-info"
    write(unknown / "METADATA")  # no RECORD: nothing says what it installed

    removed = prune_stale_dist_info(tmp_path)

    assert removed == ["boto3-1.0.dist-info", "setuptools-1.0.dist-info"]
    assert all(folder.is_dir() for folder in kept)
    assert not any(folder.exists() for folder in stale)
    assert unknown.is_dir()


def test_bytecode_is_unchecked_hash_and_names_var_task(tmp_path):
    module = write(tmp_path / "pkg/mod.py", "def f():\n    return 41 + 1\n")
    write(tmp_path / "pkg/__init__.py")
    assert compile_bytecode(tmp_path, workers=1) == 2
    pyc = Path(importlib.util.cache_from_source(str(module)))
    data = pyc.read_bytes()
    assert data[:4] == importlib.util.MAGIC_NUMBER
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, source never checked
    assert b"/var/task/pkg/mod.py" in data
    assert str(tmp_path).encode() not in data


def test_bytecode_is_used_even_when_the_source_looks_newer(tmp_path):
    """/var/task keeps whatever dates the zip gives: an unchecked .pyc is still read, not recompiled."""
    module = write(tmp_path / "probe_mod.py", "VALUE = 'from the source'\n")
    compile_bytecode(tmp_path, workers=1)
    module.write_text("VALUE = 'changed after compiling'\n")
    os.utime(module, (2_000_000_000, 2_000_000_000))
    result = subprocess.run(
        [sys.executable, "-B", "-c", "import probe_mod; print(probe_mod.VALUE)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)},
    )
    assert result.stdout.strip() == "from the source"


def test_third_party_modules_ship_as_bytecode_alone_and_the_projects_own_keep_their_source(tmp_path):
    """What a RECORD claims loses its .py for a legacy .pyc; the project's code and Zappa's files keep theirs."""
    write(tmp_path / "lib/__init__.py", "from lib.sub.mod import fail\n")
    write(tmp_path / "lib/sub/__init__.py")
    write(tmp_path / "lib/sub/mod.py", "def fail():\n    raise ValueError('from the library')\n")
    write(tmp_path / "lib/data.json", "{}")
    write(tmp_path / "single.py", "NAME = 'single'\n")
    library = dist_info(tmp_path, "lib", "lib/__init__.py", "lib/sub/__init__.py", "lib/sub/mod.py", "single.py")
    write(tmp_path / "apps/__init__.py")
    write(tmp_path / "apps/views.py", "import lib\n\ndef view():\n    lib.fail()\n")
    write(tmp_path / "handler.py", "HANDLER = True\n")

    done = add_bytecode(tmp_path, workers=1)

    assert (done.compiled, done.sourceless) == (7, 4)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "lib").rglob("*")) == [
        "lib/__init__.pyc",
        "lib/data.json",
        "lib/sub",
        "lib/sub/__init__.pyc",
        "lib/sub/mod.pyc",
    ]
    assert (tmp_path / "single.pyc").is_file() and not (tmp_path / "single.py").exists()
    for own in ("apps/views.py", "handler.py"):
        assert (tmp_path / own).is_file()
        assert Path(importlib.util.cache_from_source(str(tmp_path / own))).is_file()
    assert not (library / "RECORD").exists(), "it would list files that are not there"
    assert (library / "METADATA").is_file()

    # The tree runs from the bytecode alone, and a traceback still names the library's file and line.
    script = "import single, apps.views; print(single.NAME); apps.views.view()"
    result = subprocess.run(
        [sys.executable, "-S", "-B", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)},
    )
    assert result.stdout.strip() == "single"
    assert 'File "/var/task/lib/sub/mod.py", line 2, in fail' in result.stderr
    assert "ValueError: from the library" in result.stderr
    assert "lib.fail()" in result.stderr, "the project's own lines still show"


def test_symbol_tables_go_and_the_extension_still_loads(tmp_path):
    """A venv extension with a .symtab is stripped to its dynamic symbols; one without is not rewritten."""
    extension = next(SITE_PACKAGES.glob("_cffi_backend.*.so"))
    vendored = next((SITE_PACKAGES / "psycopg2_binary.libs").glob("libpq-*.so*"))
    assert ".symtab" in elf_section_names(extension.read_bytes())
    assert ".symtab" not in elf_section_names(vendored.read_bytes())
    copied = tmp_path / extension.name
    copied.write_bytes(extension.read_bytes())
    (tmp_path / "libs").mkdir()
    untouched = tmp_path / "libs" / vendored.name
    untouched.write_bytes(vendored.read_bytes())

    assert strip_symbols(tmp_path) == [extension.name]

    sections = elf_section_names(copied.read_bytes())
    assert ".symtab" not in sections and ".dynsym" in sections
    assert copied.stat().st_size < extension.stat().st_size
    assert untouched.read_bytes() == vendored.read_bytes()
    loaded = subprocess.run(
        [sys.executable, "-S", "-c", "import _cffi_backend; print(_cffi_backend.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(tmp_path)},
    )
    assert loaded.stdout.strip() == str(copied)


def test_a_module_that_does_not_compile_stops_the_build(tmp_path):
    write(tmp_path / "broken.py", "def (:\n")
    with pytest.raises(ArtifactError, match="does not compile"):
        compile_bytecode(tmp_path, workers=1)


def test_same_tree_same_zip_bytes(tmp_path):
    tree = tmp_path / "tree"
    write(tree / "b/module.py", "B = 2\n")
    write(tree / "a.py", "A = 1\n")
    write(tree / "a-1.0.dist-info/RECORD", "a.py,,\n")
    first = write_zip(tree, tmp_path / "first.zip").read_bytes()
    for path in tree.rglob("*"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
    second = write_zip(tree, tmp_path / "second.zip").read_bytes()
    assert first == second
    with zipfile.ZipFile(tmp_path / "first.zip") as archive:
        assert archive.namelist() == ["a-1.0.dist-info/RECORD", "a.py", "b/module.py"]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_package_info_names_the_contents_not_the_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    write(tmp_path / "zappa_settings.py", "API_STAGE='dev'\n")
    write(tmp_path / "package_info.json", json.dumps({"uuid": "random", "build_time": "123", "build_user": "me"}))
    first = stamp_package_info(tmp_path, project_dir=tmp_path)
    again = stamp_package_info(tmp_path, project_dir=tmp_path)
    assert first == again
    assert first["build_time"] == "1700000000"
    assert json.loads((tmp_path / "package_info.json").read_text()) == first
    write(tmp_path / "zappa_settings.py", "API_STAGE='production'\n")
    assert stamp_package_info(tmp_path, project_dir=tmp_path)["uuid"] != first["uuid"]


def test_bytecode_needs_the_stages_python(tmp_path):
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    check_runtime({"runtime": here})
    with pytest.raises(ArtifactError, match="the stage runs python3.12 but this virtualenv is"):
        check_runtime({"runtime": "python3.12"})


def test_stage_config_follows_extends_and_names_unknown_stages(tmp_path):
    stages = {"base": {"runtime": "python3.11", "memory_size": 1}, "prod": {"extends": "base", "memory_size": 2}}
    settings_file = write(tmp_path / "zappa_settings.json", json.dumps(stages))
    assert stage_config("prod", settings_file) == {"runtime": "python3.11", "memory_size": 2}
    with pytest.raises(ArtifactError, match="no stage 'nope'"):
        stage_config("nope", settings_file)


def test_command_refuses_an_unknown_stage_without_building(tmp_path, capsys):
    out = tmp_path / "x.zip"
    assert main(["no-such-stage", "-o", str(out)]) == 2
    assert "no stage 'no-such-stage'" in capsys.readouterr().err
    assert not out.exists()


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_runtime_tree_takes_the_runtime_paths_git_tracks_and_names_what_it_left_out(tmp_path):
    """The folder Zappa packages: apps/, project/, manage.py as committed; nothing planted, nothing else."""
    checkout = tmp_path / "checkout"
    for name in ("apps/a/models.py", "project/settings.py", "manage.py", "tests/test_a.py", "tools/artifact.py"):
        write(checkout / name, f"# {name}\n")
    _git(checkout, "init", "-q")
    _git(checkout, "add", ".")
    _git(checkout, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "tree")
    planted = [".env", "key.pem", "project/.env", "apps/a/key.pem", "project/new_module.py"]
    for name in planted:
        write(checkout / name, "SECRET\n")
    write(checkout / "project/__pycache__/settings.cpython-311.pyc", "bytecode")
    write(checkout / "manage.py", "# edited, not committed\n")

    left_out = runtime_tree(checkout, tmp_path / "tree")
    shipped = sorted(p.relative_to(tmp_path / "tree").as_posix() for p in (tmp_path / "tree").rglob("*") if p.is_file())
    assert shipped == ["apps/a/models.py", "manage.py", "project/settings.py"]
    assert (tmp_path / "tree" / "manage.py").read_text() == "# edited, not committed\n", "the working tree's contents"
    assert left_out == ["apps/a/key.pem", "project/.env", "project/new_module.py"]


def test_runtime_tree_outside_git_takes_every_file_of_the_paths_but_bytecode(tmp_path):
    project = tmp_path / "bare"
    for name in ("bare/settings.py", "manage.py", "other/x.py", "bare/__pycache__/settings.cpython-311.pyc"):
        write(project / name)
    assert runtime_tree(project, tmp_path / "tree", ("bare", "manage.py")) == []
    shipped = sorted(p.relative_to(tmp_path / "tree").as_posix() for p in (tmp_path / "tree").rglob("*") if p.is_file())
    assert shipped == ["bare/settings.py", "manage.py"]
    with pytest.raises(ArtifactError, match="runtime paths not found"):
        runtime_tree(project, tmp_path / "tree2", ("apps",))


def test_the_runtime_venv_is_rebuilt_when_requirements_change(tmp_path):
    requirements = write(tmp_path / "requirements.txt", "Django==5.2.19\n")
    first = requirements_key(requirements)
    assert requirements_key(requirements) == first
    write(requirements, "Django==5.2.20\n")
    assert requirements_key(requirements) != first
