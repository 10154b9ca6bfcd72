"""`make mutation` and `make mutation-quick` (scripts/mutation.py), run for real with mutmut on a
toy repository: a full run passes when every mutant is killed, and a branch that deletes a test
plants survivors that `--quick` reports, failing."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # each run is a real mutmut run (about 20 s)

TOY = '''"""A guard with one decision."""


def check(token: str, expected: str) -> bool:
    if token != expected:
        raise PermissionError("bad token")
    return True
'''

TESTS = """import pytest

from toy import check


def test_the_right_token_passes():
    assert check("a", "a") is True


def test_a_wrong_token_is_refused():
    with pytest.raises(PermissionError, match="^bad token$"):
        check("a", "b")
"""

CONFTEST = """from hypothesis import settings

settings.register_profile("mutation", deadline=None, derandomize=True, database=None)
"""

SPEC = """[module]
source = "src/toy.py"
tests = ["tests/test_toy.py"]

[equivalent]

[killed_by]
"""

HAND_MADE = """[[mutant]]
source = "src/toy.py"
what = "any token passes"
find = "if token != expected:"
replace = "if False:"
tests = ["tests/test_toy.py"]
"""

PYPROJECT = """[project]
name = "toy"
version = "0"
"""


def _driver():
    spec = importlib.util.spec_from_file_location("mutation_driver", ROOT / "scripts/mutation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation_driver"] = module
    spec.loader.exec_module(module)
    return module


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    repo = tmp_path / "toy"
    for relative, text in {
        "pyproject.toml": PYPROJECT,
        "src/toy.py": TOY,
        "tests/__init__.py": "",
        "tests/conftest.py": CONFTEST,
        "tests/test_toy.py": TESTS,
        "tests/mutation/toy.toml": SPEC,
        "tests/mutation/hand-made/toy.toml": HAND_MADE,
    }.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text, encoding="utf-8")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "toy")
    return repo


def test_a_full_run_passes_and_a_deleted_test_fails_the_quick_run(toy, tmp_path, capsys):
    driver = _driver()
    report = tmp_path / "quality.md"
    work = tmp_path / "work"
    assert driver.main(["--root", str(toy), "--workdir", str(work), "--report", str(report)]) == 0
    text = report.read_text(encoding="utf-8")
    assert "| toy |" in text and "100.0%" in text and "Survivors" not in text
    assert "| `src/toy.py` | any token passes | `tests/test_toy.py` | killed |" in text

    # nothing touched against main: nothing to do
    assert driver.main(["--quick", "--root", str(toy), "--workdir", str(work)]) == 0
    assert "no module under mutation testing is touched" in capsys.readouterr().out

    _git(toy, "checkout", "-q", "-b", "plant")
    tests = toy / "tests/test_toy.py"
    tests.write_text(TESTS.partition("\n\n\ndef test_a_wrong_token")[0] + "\n", encoding="utf-8")
    _git(toy, "commit", "-q", "-am", "delete the refusal test")
    assert driver.main(["--quick", "--root", str(toy), "--workdir", str(work)]) == 1
    out, err = capsys.readouterr()
    assert "touched: toy" in out
    assert "Survivors nobody has explained yet" in out
    assert "toy.x_check__mutmut_" in out and '"bad token"' in out  # the mutant's diff is shown
    assert "FAILED toy:" in err and "unexplained survivors" in err
    assert "FAILED hand-made mutant of src/toy.py (any token passes): SURVIVED" in err


def test_an_explained_survivor_passes_and_a_stale_claim_fails(toy, tmp_path, capsys):
    driver = _driver()
    work = tmp_path / "work"
    tests = toy / "tests/test_toy.py"
    tests.write_text(TESTS.replace('match="^bad token$"', 'match="token"'), encoding="utf-8")
    _git(toy, "commit", "-q", "-am", "a looser match")
    # the message mutants now survive; which ones, the run says
    assert driver.main(["--only", "toy", "--root", str(toy), "--workdir", str(work)]) == 1
    out, _ = capsys.readouterr()
    survivors = sorted(set(_names(out)))
    assert survivors, out
    spec = toy / "tests/mutation/toy.toml"
    explained = "".join(f'"{n}" = "the message is not a decision"\n' for n in survivors)
    spec.write_text(SPEC.replace("[equivalent]\n", "[equivalent]\n" + explained), encoding="utf-8")
    assert driver.main(["--only", "toy", "--root", str(toy), "--workdir", str(work)]) == 0
    assert "the message is not a decision" in capsys.readouterr().out

    # a claim the tests contradict: the strict match is back, so "equivalent" is now false
    tests.write_text(TESTS, encoding="utf-8")
    assert driver.main(["--only", "toy", "--root", str(toy), "--workdir", str(work)]) == 1
    assert "listed as equivalent but killed" in capsys.readouterr().out


def _names(out: str) -> list[str]:
    return [
        line.split("`")[1]
        for line in out.splitlines()
        if line.startswith("- `toy.x_check__mutmut_") and "(survived)" in line
    ]
