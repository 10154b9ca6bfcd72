"""The code's own gates, run with the suite: lint, format, types, and bandit's security scan."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "cmd",
    [
        ("ruff", "check", "src", "tests", "benchmarks"),
        ("ruff", "format", "--check", "src", "tests", "benchmarks"),
        ("mypy",),
        ("bandit", "-q", "-c", "pyproject.toml", "-r", "src"),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "bandit"],
)
def test_code_gate_passes(cmd):
    proc = _run(str(BIN / cmd[0]), *cmd[1:])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_pickle_anywhere_in_the_package():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "src").rglob("*.py")
        if "import pickle" in p.read_text() or "pickle.load" in p.read_text()
    ]
    assert offenders == []


def test_every_docstring_example_runs() -> None:
    """The examples in docstrings are documentation users copy: each one must still hold."""
    import doctest
    import importlib
    import pkgutil

    import aidlc

    failed, attempted = [], 0
    for info in pkgutil.walk_packages(aidlc.__path__, "aidlc."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue
        result = doctest.testmod(importlib.import_module(info.name), report=False)
        attempted += result.attempted
        if result.failed:
            failed.append(info.name)
    assert failed == []
    assert attempted > 200  # the walk found the package's modules
