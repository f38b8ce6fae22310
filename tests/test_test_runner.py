"""`python manage.py test` takes Django's dotted labels and --parallel, and hands them to pytest."""

import os
import subprocess
import sys

from tests.runner import ROOT, PytestTestRunner, pytest_target


def test_dotted_labels_become_pytest_targets():
    """Packages become folders, modules files, the rest node ids; paths pass through untouched."""
    assert pytest_target("tests.accounts") == "tests/accounts"
    assert pytest_target("tests.accounts.test_api") == "tests/accounts/test_api.py"
    assert pytest_target("tests.test_html.test_empty_bodies") == "tests/test_html.py::test_empty_bodies"
    assert pytest_target("tests/test_html.py::test_empty_bodies") == "tests/test_html.py::test_empty_bodies"
    assert pytest_target("tests.nowhere.test_x") == "tests.nowhere.test_x"


def test_parallel_becomes_xdist_workers():
    assert PytestTestRunner(parallel="2").pytest_arguments(["tests.test_html"])[-3:] == [
        "-n",
        "2",
        "tests/test_html.py",
    ]
    assert "-n" not in PytestTestRunner(parallel=0).pytest_arguments([])


def test_manage_py_test_runs_a_dotted_label_in_parallel():
    """The real command, end to end: two xdist workers run exactly the named module's tests."""
    env = {k: v for k, v in os.environ.items() if k != "CUE_TEST_RUN_ID"}
    result = subprocess.run(
        [sys.executable, "manage.py", "test", "tests.test_html", "--parallel", "2", "--settings=tests.settings"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/test_html.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    collected = sum(1 for line in listed.splitlines() if line.startswith("tests/test_html.py::"))
    assert collected > 0, listed
    assert f"2 workers [{collected} items]" in output, output
    assert f"{collected} passed" in output, output


def test_two_runs_at_once_on_one_postgresql_both_pass():
    """Each run creates and drops a test database of its own, so two suites side by side never collide."""
    env = {k: v for k, v in os.environ.items() if k != "CUE_TEST_RUN_ID"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_tenancy.py"]
    runs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)]
    runs.append(
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    )
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output
        assert "passed" in output and "error" not in output.lower(), output
