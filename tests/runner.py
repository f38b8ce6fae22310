"""Lets `python manage.py test` hand over to pytest, as pytest-django documents.

Django's labels are dotted (`tests.accounts.test_api`, `tests.accounts.test_api.test_signup`); pytest
wants paths and node ids. `--parallel N` becomes pytest-xdist's `-n N` (`auto` as Django spells it).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pytest_target(label: str, root: Path = ROOT) -> str:
    """A Django test label as a pytest target: paths and node ids pass through; dotted names become paths."""
    if "/" in label or "::" in label or label.endswith(".py") or (root / label).exists():
        return label
    parts = label.split(".")
    # The longest prefix that names a package or a module; the rest are a class and/or a function in it.
    for cut in range(len(parts), 0, -1):
        base = root.joinpath(*parts[:cut])
        if base.with_suffix(".py").is_file():
            return "::".join([str(base.with_suffix(".py").relative_to(root)), *parts[cut:]])
        if base.is_dir() and cut == len(parts):
            return str(base.relative_to(root))
    return label  # not ours to understand: pytest says what is wrong with it


class PytestTestRunner:
    def __init__(self, verbosity=1, failfast=False, keepdb=False, parallel=0, **kwargs):
        self.verbosity = verbosity
        self.failfast = failfast
        self.keepdb = keepdb
        self.parallel = parallel

    @classmethod
    def add_arguments(cls, parser):
        parser.add_argument("--keepdb", action="store_true", help="Preserves the test DB between runs.")
        parser.add_argument(
            "--parallel",
            nargs="?",
            const="auto",
            default=0,
            metavar="N",
            help="Run tests in N processes (pytest-xdist); 'auto' or no value: one per core.",
        )

    def pytest_arguments(self, test_labels) -> list[str]:
        argv = []
        if self.verbosity == 0:
            argv.append("--quiet")
        elif self.verbosity >= 2:
            argv.append("--verbose")
        if self.failfast:
            argv.append("--exitfirst")
        if self.keepdb:
            argv.append("--reuse-db")
        if self.parallel and str(self.parallel) not in ("0", "1"):
            argv += ["-n", str(self.parallel)]
        argv.extend(pytest_target(label) for label in test_labels)
        return argv

    def run_tests(self, test_labels, **kwargs):
        import pytest

        return pytest.main(self.pytest_arguments(test_labels))
