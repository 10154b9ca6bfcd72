"""Mutation testing of aidlc's security-critical modules: `make mutation` and `make mutation-quick`.

Each module under test is described by a file in `tests/mutation/` (its source, the tests that
cover it, optionally the functions that matter, the mutants that are equivalent with the reason,
and the test that kills each former survivor). For every module this runs mutmut in a private
copy of the tree (`build/mutation/NAME`: mutmut writes its `mutants/` there), with only that
module's tests, and reads the verdicts back.

    python scripts/mutation.py                     # every module; writes docs/quality.md
    python scripts/mutation.py --quick [--base main]   # the modules a change touches
    python scripts/mutation.py --only core.crypto --only core.keys

Mutants written by hand (`tests/mutation/hand-made/*.toml`: an edit that once broke a guarantee
with every test passing, and the test that now fails against it) are applied and checked too.

A module passes when at least 90% of its non-equivalent mutants are detected (killed, timed
out, crashed). `--quick` also fails on any survivor not listed as equivalent: a deleted test
shows up as the mutants it used to kill. Exit 0 pass, 1 a module failed, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.90
DETECTED = frozenset({"killed", "timeout", "segfault", "caught by type check"})
_RESULT = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")


@dataclass
class Module:
    """One module under mutation testing, as `tests/mutation/NAME.toml` describes it."""

    name: str
    source: str
    tests: list[str]
    functions: list[str] = field(default_factory=list)
    # pytest options of this module's runs; PostgreSQL variants are left out unless a module's
    # code differs by dialect (the same code runs on SQLite)
    pytest_args: list[str] = field(default_factory=lambda: ["-m", "not postgres"])
    # regex = why: source lines matching it are not mutated (human text such as hints)
    not_mutated: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, str] = field(default_factory=dict)
    killed_by: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @property
    def dotted(self) -> str:
        return self.source.removeprefix("src/").removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut's mutant-name globs for the selected functions (all when none are named)."""
        out = []
        for function in self.functions:
            owner, _, method = function.rpartition(".")
            mangled = f"xǁ{owner}ǁ{method}" if owner else f"x_{method}"
            out.append(f"{self.dotted}.{mangled}__mutmut_*")
        return out


@dataclass
class Outcome:
    module: Module
    statuses: dict[str, str]
    seconds: float
    log: Path
    finished: bool = True

    def count(self, *wanted: str) -> int:
        return sum(1 for s in self.statuses.values() if s in wanted)

    @property
    def equivalent(self) -> list[str]:
        return sorted(
            n for n, s in self.statuses.items() if n in self.module.equivalent and s not in DETECTED
        )

    @property
    def survivors(self) -> list[str]:
        """Undetected mutants nobody has explained."""
        return sorted(
            n
            for n, s in self.statuses.items()
            if s not in DETECTED and n not in self.module.equivalent
        )

    @property
    def stale(self) -> list[str]:
        """Claims the run contradicts: an 'equivalent' mutant that a test kills, a 'killed by'
        mutant that survived, a named mutant that no longer exists."""
        out = []
        for name in self.module.equivalent:
            if name not in self.statuses:
                out.append(f"{name}: listed as equivalent but no longer generated")
            elif self.statuses[name] in DETECTED:
                out.append(f"{name}: listed as equivalent but {self.statuses[name]}")
        for name, test in self.module.killed_by.items():
            status = self.statuses.get(name)
            if status is None:
                out.append(f"{name}: listed as killed by {test} but no longer generated")
            elif status not in DETECTED:
                out.append(f"{name}: listed as killed by {test} but {status}")
        return out

    @property
    def score(self) -> float:
        total = len(self.statuses) - len(self.equivalent)
        return self.count(*DETECTED) / total if total else 1.0

    @property
    def passed(self) -> bool:
        return self.score >= THRESHOLD and not self.stale


@dataclass
class HandMade:
    """A mutant written by hand (tests/mutation/hand-made/*.toml): a text edit to a source file
    and the test that must fail against it."""

    source: str
    what: str
    find: str
    replace: str
    tests: list[str]
    spec: str
    status: str = "not run"  # killed | SURVIVED | stale: ... | error: ...

    @property
    def killed(self) -> bool:
        return self.status == "killed"


def load_hand_made(root: Path) -> list[HandMade]:
    out = []
    for path in sorted((root / "tests" / "mutation" / "hand-made").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        spec = str(path.relative_to(root))
        out += [HandMade(**entry, spec=spec) for entry in data.get("mutant", [])]
    return out


def run_hand_made(root: Path, workdir: Path, mutant: HandMade, number: int) -> None:
    """Apply the edit to a copy of src/ and run the test against it: it must fail."""
    text = (root / mutant.source).read_text(encoding="utf-8")
    if text.count(mutant.find) != 1:
        mutant.status = f"stale: the text to replace occurs {text.count(mutant.find)} times"
        return
    copy = workdir / "hand-made" / str(number)
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(root / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / mutant.source).write_text(text.replace(mutant.find, mutant.replace), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDLC_", "PYTEST_"))}
    env["PYTHONPATH"] = str(copy / "src")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *mutant.tests],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # pytest: 0 all passed (the mutant survived), 1 some test failed (killed), else no verdict
    mutant.status = {0: "SURVIVED", 1: "killed"}.get(
        done.returncode, f"error: pytest exit {done.returncode}"
    )


def load_modules(root: Path) -> list[Module]:
    modules = []
    for path in sorted((root / "tests" / "mutation").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        spec = data.get("module", {})
        modules.append(
            Module(
                name=path.stem,
                source=spec["source"],
                tests=list(spec["tests"]),
                functions=list(spec.get("functions", [])),
                pytest_args=list(spec.get("pytest_args", ["-m", "not postgres"])),
                not_mutated=dict(data.get("not_mutated", {})),
                equivalent=dict(data.get("equivalent", {})),
                killed_by=dict(data.get("killed_by", {})),
                path=path,
            )
        )
    return modules


def _git(root: Path, *args: str) -> list[str]:
    out = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    return [line for line in out.splitlines() if line]


def changed_files(root: Path, base: str) -> set[str]:
    """Files a change touches against `base`: commits since the merge base, the working tree
    and untracked files (a deleted test counts: its path is in the diff)."""
    head = _git(root, "rev-parse", "HEAD")[0]
    fork = _git(root, "merge-base", base, "HEAD")[0]
    changed = set(_git(root, "diff", "--name-only", fork, head)) if fork != head else set()
    changed |= set(_git(root, "diff", "--name-only", "HEAD"))
    changed |= set(_git(root, "ls-files", "--others", "--exclude-standard"))
    return changed


def touched(modules: list[Module], changed: set[str], root: Path) -> list[Module]:
    out = []
    for module in modules:
        own = {module.source, *module.tests}
        if module.path is not None:
            own.add(str(module.path.relative_to(root)))
        if own & changed:
            out.append(module)
    return out


def _prepare(root: Path, work: Path, module: Module) -> None:
    """A fresh copy of the sources and tests, with mutmut told what to mutate and run."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    # the tracked tree: tests also read the docs, the deploy files and the lock files
    tops = sorted({p.split("/")[0] for p in _git(root, "ls-files")} - {"pyproject.toml"})
    for top in tops:
        if (root / top).is_dir():
            shutil.copytree(root / top, work / top, ignore=ignore)
        elif (root / top).exists():
            shutil.copy2(root / top, work / top)
    also = ", ".join(f'"{t}"' for t in tops if t not in ("src", "tests"))
    tests = ", ".join(json.dumps(t) for t in [*module.tests, *module.pytest_args])
    config = (root / "pyproject.toml").read_text(encoding="utf-8") + (
        "\n[tool.mutmut]\n"
        'source_paths = ["src"]\n'
        f"also_copy = [{also}]\n"
        f'only_mutate = ["{module.source}"]\n'
        f"do_not_mutate_patterns = {_toml_strings(module.not_mutated)}\n"
        f"pytest_add_cli_args_test_selection = [{tests}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "--hypothesis-profile=mutation"]\n'
        "use_git_change_detection = false\n"
        # workers fork from a process that has only imported and collected the tests: polars,
        # OpenMP and ONNX Runtime thread pools started by a test run do not survive a fork
        'process_isolation = "forkserver"\n'
        # a mutant gets (test time + 5 s) x 15 of wall time: on a busy machine the default 1 s
        # would count slow survivors as timeouts, which count as detected
        "timeout_constant = 5.0\n"
    )
    (work / "pyproject.toml").write_text(config, encoding="utf-8")


def _toml_strings(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def run_module(
    root: Path, workdir: Path, module: Module, jobs: int, limit: float | None = None
) -> Outcome:
    work = workdir / module.name
    _prepare(root, work, module)
    mutmut = [sys.executable, "-m", "mutmut"]
    log = work / "mutmut.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIDLC_", "PYTEST_"))}
    env.pop("PYTHONPATH", None)
    clock = time.monotonic()
    finished = True
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*mutmut, "run", "--max-children", str(jobs), *module.patterns()],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            # out of time: stop mutmut and its workers; what was checked is still reported and
            # the rest counts as not checked (undetected)
            finished = False
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.monotonic() - clock
    if finished and proc.returncode != 0:
        raise RuntimeError(f"mutmut failed on {module.name} (exit {proc.returncode}); see {log}")
    results = subprocess.run(
        [*mutmut, "results", "--all", "true"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    statuses = {}
    prefixes = [p.removesuffix("*") for p in module.patterns()] or [f"{module.dotted}."]
    for line in results.splitlines():
        found = _RESULT.match(line)
        if found and any(found["name"].startswith(p) for p in prefixes):
            statuses[found["name"]] = found["status"]
    return Outcome(module, statuses, seconds, log, finished)


def _diff(work: Path, name: str) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return "\n".join(line for line in shown.splitlines() if line.startswith(("-", "+")))


def summary(outcomes: list[Outcome]) -> str:
    lines = [
        "| module | mutants | killed | timeout / crash | survived | equivalent | no tests "
        "| detected (of non-equivalent) | minutes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        lines.append(
            f"| {o.module.name} | {len(o.statuses)} | {o.count('killed')} "
            f"| {o.count('timeout', 'segfault')} | {len(o.survivors)} | {len(o.equivalent)} "
            f"| {o.count('no tests', 'not checked')} | {o.score:.1%} "
            f"{'' if o.passed else '**below 90%**' if o.score < THRESHOLD else '**stale claims**'}"
            f"{'' if o.finished else ' (stopped at the time limit)'}"
            f"| {o.seconds / 60:.1f} |"
        )
    return "\n".join(lines)


def details(outcome: Outcome, workdir: Path) -> str:
    module = outcome.module
    out = [f"### {module.name} (`{module.source}`)", ""]
    out.append("Tests: " + ", ".join(f"`{t}`" for t in module.tests))
    if module.functions:
        out.append("Functions: " + ", ".join(f"`{f}`" for f in module.functions))
    if module.not_mutated:
        out.append(
            "Lines not mutated: "
            + "; ".join(f"`{pattern}` ({why})" for pattern, why in module.not_mutated.items())
        )
    out.append("")
    unchecked = [n for n in outcome.survivors if outcome.statuses[n] == "not checked"]
    if unchecked:
        out += [f"Not checked (the run stopped at its time limit): {len(unchecked)} mutants.", ""]
    shown = [n for n in outcome.survivors if outcome.statuses[n] != "not checked"]
    if shown:
        out.append("Survivors nobody has explained yet:")
        out.append("")
        for name in shown:
            diff = _diff(workdir / module.name, name)
            out.append(f"- `{name}` ({outcome.statuses[name]})")
            out += [f"      {line}" for line in diff.splitlines()[:6]]
        out.append("")
    if outcome.equivalent:
        out += ["Equivalent mutants (no test can tell them from the original):", ""]
        out += [f"- `{n}`: {module.equivalent[n]}" for n in outcome.equivalent]
        out.append("")
    if module.killed_by:
        out += ["Former survivors and the tests that now kill them:", ""]
        out += [f"- `{n}`: `{t}`" for n, t in sorted(module.killed_by.items())]
        out.append("")
    if outcome.stale:
        out += ["Claims this run contradicts:", ""] + [f"- {s}" for s in outcome.stale] + [""]
    return "\n".join(out)


def hand_made_section(mutants: list[HandMade]) -> str:
    if not mutants:
        return ""
    lines = [
        "## Hand-made mutants",
        "",
        "Edits that once broke a guarantee with every test still passing; each named test must",
        "now fail against its edit (`tests/mutation/hand-made/`).",
        "",
        "| source | the edit | test that must fail | result |",
        "|---|---|---|---|",
    ]
    for m in mutants:
        lines.append(f"| `{m.source}` | {m.what} | `{' '.join(m.tests)}` | {m.status} |")
    return "\n".join(lines) + "\n"


def report(
    outcomes: list[Outcome],
    workdir: Path,
    command: str,
    seconds: float,
    hand_made: list[HandMade] | None = None,
    pending: list[Module] | None = None,
) -> str:
    mutants = sum(len(o.statuses) for o in outcomes)
    cpus = os.cpu_count() or 1
    head = [
        "# Mutation testing",
        "",
        "Generated by `scripts/mutation.py`; do not edit by hand. Each security-critical module is",
        "mutated by mutmut and run against the tests listed for it in `tests/mutation/`; a module",
        f"passes when at least {THRESHOLD:.0%} of its non-equivalent mutants are detected (killed,",
        "timed out or crashed). Every survivor is either killed by a named test or explained as",
        "equivalent below.",
        "",
        f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- Command: `{command}`",
        f"- Machine: {platform.machine()}, {cpus} CPUs (`nproc`), "
        f"Python {platform.python_version()}",
        f"- Wall time: {seconds / 60:.1f} minutes for {mutants} mutants "
        f"({mutants / max(seconds / 60, 1e-9):.0f} mutants a minute)",
        "",
        summary(outcomes),
        "",
        *(
            [f"Not measured in this run: {', '.join(m.name for m in pending)}.", ""]
            if pending
            else []
        ),
        hand_made_section(hand_made or []),
        "## Modules",
        "",
    ]
    return "\n".join(head + [details(o, workdir) for o in outcomes]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the modules a change touches")
    parser.add_argument("--base", default="main", help="what --quick compares with")
    parser.add_argument("--only", action="append", default=[], help="a module name (repeatable)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--report", type=Path, help="write the report here (full runs)")
    parser.add_argument(
        "--module-minutes",
        type=float,
        help="stop a module's run after this long; its unchecked mutants count as undetected",
    )
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help="default: ROOT/build/mutation")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    workdir = (args.workdir or root / "build" / "mutation").resolve()
    modules = load_modules(root)
    if args.only:
        unknown = set(args.only) - {m.name for m in modules}
        if unknown:
            print(f"unknown modules: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
        modules = [m for m in modules if m.name in args.only]
    hand_made = load_hand_made(root)
    if args.only:
        hand_made = [h for h in hand_made if any(m.source == h.source for m in modules)]
    if args.quick:
        changed = changed_files(root, args.base)
        modules = touched(modules, changed, root)
        hand_made = [
            h
            for h in hand_made
            if {h.source, h.spec, *(t.split("::")[0] for t in h.tests)} & changed
        ]
        if not modules and not hand_made:
            print(f"no module under mutation testing is touched against {args.base}")
            return 0
        names = [m.name for m in modules] + [f"hand-made ({h.source})" for h in hand_made]
        print("touched: " + ", ".join(names), flush=True)
    clock = time.monotonic()
    for number, mutant in enumerate(hand_made):
        print(f"hand-made mutant of {mutant.source}: {mutant.what} ...", flush=True)
        run_hand_made(root, workdir, mutant, number)
        print(f"  {mutant.status}", flush=True)
    outcomes = []
    command = "make mutation-quick" if args.quick else "make mutation"
    if args.only:
        command = "python scripts/mutation.py " + " ".join(f"--only {n}" for n in args.only)
    limit = args.module_minutes * 60 if args.module_minutes else None
    for number, module in enumerate(modules):
        print(f"mutating {module.name} ...", flush=True)
        outcome = run_module(root, workdir, module, args.jobs, limit)
        print(
            f"  {len(outcome.statuses)} mutants, {outcome.score:.1%} detected, "
            f"{len(outcome.survivors)} unexplained survivors, {outcome.seconds / 60:.1f} min"
            + ("" if outcome.finished else " (stopped at the time limit)"),
            flush=True,
        )
        outcomes.append(outcome)
        if args.report is not None and not args.quick:  # kept current as modules finish
            seconds = time.monotonic() - clock
            text = report(outcomes, workdir, command, seconds, hand_made, modules[number + 1 :])
            args.report.write_text(text, encoding="utf-8")
    seconds = time.monotonic() - clock
    text = report(outcomes, workdir, command, seconds, hand_made)
    if args.report is not None and not args.quick:
        args.report.write_text(text, encoding="utf-8")
    print(text)
    failed = [o for o in outcomes if not o.passed or (args.quick and o.survivors)]
    for o in failed:
        why = f"{len(o.survivors)} unexplained survivors" if o.survivors else "stale claims"
        print(f"FAILED {o.module.name}: {o.score:.1%} detected; {why}", file=sys.stderr)
    for h in hand_made:
        if not h.killed:
            print(f"FAILED hand-made mutant of {h.source} ({h.what}): {h.status}", file=sys.stderr)
    return 1 if failed or not all(h.killed for h in hand_made) else 0


if __name__ == "__main__":
    sys.exit(main())
