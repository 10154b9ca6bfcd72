"""The project's own supply chain, run with the suite: no known-vulnerable locked dependency
(pip-audit), no committed secret beyond the audited baseline (detect-secrets), and a CycloneDX
SBOM of aidlc written as a CI artifact. bandit runs in tests/test_quality.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("AIDLC_TOOLS_BIN", REPO / ".venv-tools" / "bin"))
ARTIFACTS = Path(os.environ.get("AIDLC_ARTIFACTS", REPO / "build" / "artifacts"))


def _tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        pytest.skip(
            f"{path} is missing: `make test` creates the tools venv from requirements-tools.lock"
        )
    return path


def _tracked_files() -> list[str]:
    done = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False, timeout=60
    )
    if done.returncode != 0:
        pytest.skip("not a git checkout: the secret scan covers the files git tracks")
    # The baseline holds the findings' hashes: scanning it would flag the baseline itself.
    return [
        f
        for f in done.stdout.decode().split("\0")
        if f and f != ".secrets.baseline" and (REPO / f).is_file()
    ]


def _vulnerability_service_reachable() -> bool:
    """pip-audit asks PyPI's JSON API per release (/pypi/NAME/VERSION/json). Some mirrors and
    proxies answer the project page but not the release pages: then nothing can be audited."""
    url = "https://pypi.org/pypi/pip/24.0/json"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return bool(answer.status == 200 and b'"vulnerabilities"' in answer.read())
    except (urllib.error.URLError, OSError):
        return False


def test_locked_dependencies_have_no_known_vulnerabilities() -> None:
    pip_audit = _tool("pip-audit")
    if not _vulnerability_service_reachable():
        pytest.skip(
            "PyPI's per-release JSON API (pypi.org/pypi/NAME/VERSION/json), where pip-audit "
            "finds vulnerabilities, does not answer from this machine; it runs where it does"
        )
    done = subprocess.run(
        [
            str(pip_audit),
            "--requirement",
            str(REPO / "requirements.lock"),
            "--no-deps",
            "--disable-pip",
            "--strict",
            "--progress-spinner",
            "off",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(done.stdout)
    vulnerable = {d["name"]: d["vulns"] for d in report["dependencies"] if d.get("vulns")}
    assert vulnerable == {}


@pytest.mark.slow
def test_no_secret_in_the_tree_beyond_the_audited_baseline() -> None:
    """A fresh scan of every tracked file finds only what .secrets.baseline lists, and each of
    those was audited as not a secret (test credentials for the emulator, digests, names of
    variables)."""
    baseline = json.loads((REPO / ".secrets.baseline").read_text())
    unaudited = [
        f"{path}:{s['line_number']} {s['type']}"
        for path, found in baseline["results"].items()
        for s in found
        if s.get("is_secret") is not False
    ]
    assert unaudited == []
    done = subprocess.run(
        [str(_tool("detect-secrets")), "scan", *_tracked_files()],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    scan = json.loads(done.stdout)
    known = {
        (path, s["type"], s["hashed_secret"])
        for path, found in baseline["results"].items()
        for s in found
    }
    new = sorted(
        f"{path}:{s['line_number']} {s['type']}"
        for path, found in scan["results"].items()
        for s in found
        if (path, s["type"], s["hashed_secret"]) not in known
    )
    assert new == [], (
        "possible secrets not in .secrets.baseline: review, then `make secrets-baseline`"
    )


def test_sbom_of_aidlc_lists_every_run_time_package_at_its_locked_version() -> None:
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from cyclonedx.validation import make_schemabased_validator

    cyclonedx = _tool("cyclonedx-py")
    out = ARTIFACTS / "aidlc-sbom.cdx.json"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "sbom.py"),
            str(out),
            "--cyclonedx",
            str(cyclonedx),
            "--extra",
            "aws",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    text = out.read_text()
    validator = make_schemabased_validator(OutputFormat.JSON, SchemaVersion.V1_6)
    assert validator.validate_str(text) is None
    bom = json.loads(text)
    root = bom["metadata"]["component"]
    assert (root["name"], root["version"]) == ("aidlc", metadata.version("aidlc"))
    listed = {c["name"].lower().replace("_", "-"): c["version"] for c in bom["components"]}
    locked = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            locked[name.strip().lower().replace("_", "-").replace(".", "-")] = version.strip()
    # Every direct dependency is there, at the version the lock pins.
    for direct in ("cryptography", "polars", "scikit-learn", "skops", "model-signing", "boto3"):
        assert listed[direct] == locked[direct], direct
    assert all(locked.get(name) == version for name, version in listed.items()), {
        n: (v, locked.get(n)) for n, v in listed.items() if locked.get(n) != v
    }
    # Test and lint tools are not part of what users install.
    assert not {"pytest", "ruff", "mypy", "hypothesis", "moto"} & set(listed)
    assert all(c["purl"] == f"pkg:pypi/{c['name']}@{c['version']}" for c in bom["components"])
