"""Write the CycloneDX SBOM of aidlc itself: aidlc and every package it needs at run time.

Run with the project's venv (it reads the installed distributions' metadata) and point it at
the tools venv's `cyclonedx-py`:

    .venv/bin/python scripts/sbom.py build/artifacts/aidlc-sbom.cdx.json \
        --cyclonedx .venv-tools/bin/cyclonedx-py [--extra aws]

The component list is the run-time closure of aidlc's declared dependencies (with the extras
asked for), at the versions installed from requirements.lock; test and lint tools are left out.
"""

from __future__ import annotations

import argparse
import re
import subprocess  # nosec B404 - runs cyclonedx-py, a fixed argument list, no shell
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(root: str = "aidlc", extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed name -> version of `root`'s run-time dependencies, transitively."""
    found: dict[str, str] = {}
    todo: list[tuple[str, tuple[str, ...]]] = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        key = _norm(dist.metadata["Name"])
        if key in found and not wanted:
            continue
        found[key] = dist.version
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None:
                env = {**default_environment(), "extra": ""}
                if not any(req.marker.evaluate({**env, "extra": e}) for e in ("", *wanted)):
                    continue
            if _norm(req.name) not in found:
                todo.append((req.name, tuple(sorted(req.extras))))
    found.pop(_norm(root))
    return dict(sorted(found.items()))


def _root_pyproject(folder: Path) -> Path:
    """A PEP 621 file naming the root component. cyclonedx-py 4.6 cannot read the PEP 639
    `license = "..."` string of our pyproject.toml, so name, version, description and the
    licence are restated in the table form it understands."""
    dist = metadata.distribution("aidlc")
    meta = dist.metadata
    text = (
        "[project]\n"
        f'name = "{meta["Name"]}"\n'
        f'version = "{dist.version}"\n'
        f"description = {meta['Summary']!r}\n"
        'license = {text = "Apache-2.0"}\n'
    )
    path = folder / "pyproject.toml"
    path.write_text(text.replace("'", '"'))
    return path


def write_sbom(out: Path, cyclonedx: Path, extras: tuple[str, ...] = ()) -> dict[str, str]:
    """Write the SBOM to `out`; return the components it lists (name -> version)."""
    closure = runtime_closure(extras=extras)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        pins = folder / "requirements.txt"
        pins.write_text("".join(f"{name}=={version}\n" for name, version in closure.items()))
        command = [
            str(cyclonedx),
            "requirements",
            "--pyproject",
            str(_root_pyproject(folder)),
            "--mc-type",
            "application",
            "--of",
            "JSON",
            "--sv",
            "1.6",
            "--output-reproducible",
            "--validate",
            "-o",
            str(out),
            str(pins),
        ]
        done = subprocess.run(  # nosec B603 - fixed tool path and arguments
            command, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        raise SystemExit(f"cyclonedx-py failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return closure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="where to write the SBOM (CycloneDX 1.6 JSON)")
    parser.add_argument(
        "--cyclonedx", type=Path, default=ROOT / ".venv-tools" / "bin" / "cyclonedx-py"
    )
    parser.add_argument("--extra", action="append", default=[], help="also an extra's packages")
    args = parser.parse_args(argv)
    if not args.cyclonedx.exists():
        print(f"{args.cyclonedx} not found: run `make test` once to create .venv-tools")
        return 2
    closure = write_sbom(args.out, args.cyclonedx, tuple(args.extra))
    print(f"wrote {args.out}: aidlc and {len(closure)} run-time packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
