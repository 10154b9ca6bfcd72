"""Throughput of signing and verifying a model (OpenSSF model signing), vs the model_signing CLI
and plain SHA-256 passes over the same bytes.

Run by hand (never as a timed test):

    .venv/bin/python benchmarks/bench_signing.py [--size 1GiB] [--layout both] [--repeat 3]
        [--dir /tmp] [--json]

Builds a deterministic model directory of SIZE bytes in one file (`one`) or four equal files
(`four`), then times, each in its own child process and with a warm page cache (the child reads
every file once, untimed, before the clock starts):

- aidlc `hash_model_dir`, `sign_model` and `verify_model` (end to end: hashing, key handling,
  the model_signing library, the ECDSA signature and our own checks);
- `python -m model_signing sign key` and `verify key` (the OpenSSF CLI; the time includes its
  interpreter start-up and imports). `verify key` checks the signature aidlc made, so every run
  also proves the CLI accepts it;
- one pass of `hashlib.sha256` per file (a 1 MiB read loop, on one thread and on one thread
  per file; and `hashlib.file_digest`);
- `sha256sum` and `openssl dgst -sha256` over the files.

Prints a Markdown table per layout: best and median GB/s (10^9 bytes per second) over the
repeats, best seconds and peak RSS. `--json` prints the raw samples instead. Files are deleted
afterwards.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLOCK = 64 << 20
BUFFER = 1 << 20
LAYOUTS = {"one": 1, "four": 4}
UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}


# --- steps, each run in a child process --------------------------------------------------------


def model_dir(work: Path) -> Path:
    return work / "model"


def model_paths(work: Path) -> list[Path]:
    return sorted(model_dir(work).iterdir())


def cli(mode: str, work: Path, *options: str) -> list[str]:
    return [sys.executable, "-m", "model_signing", mode, "key", *options, str(model_dir(work))]


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed: {done.stderr.strip()}")


def step_hash(work: Path) -> None:
    from aidlc.registry import signing

    signing.hash_model_dir(model_dir(work))


def step_sign(work: Path) -> None:
    from aidlc.registry import signing

    key = signing.load_private_key((work / "key.der").read_bytes())
    (work / "aidlc-timed.sig").write_bytes(signing.sign_model(model_dir(work), key))


def step_verify(work: Path) -> None:
    from aidlc.registry import signing

    public = signing.load_public_key_pem((work / "key.pub.pem").read_bytes())
    signing.verify_model(model_dir(work), (work / "aidlc.sig").read_bytes(), public)


def step_cli_sign(work: Path) -> None:
    # The CLI cannot open an encrypted key (it passes the password to cryptography as str),
    # so this peer reads the throwaway benchmark key unencrypted.
    run(
        cli(
            "sign",
            work,
            "--private_key",
            str(work / "key.pem"),
            "--signature",
            str(work / "cli.sig"),
        )
    )


def step_cli_verify(work: Path) -> None:
    public, signature = work / "key.pub.pem", work / "aidlc.sig"
    run(cli("verify", work, "--public_key", str(public), "--signature", str(signature)))


def sha256_file(path: Path) -> str:
    """The loop anyone would write: read 1 MiB, update, repeat."""
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(BUFFER):
            digest.update(chunk)
    return digest.hexdigest()


def step_hashlib(work: Path) -> None:
    for path in model_paths(work):
        sha256_file(path)


def step_hashlib_threads(work: Path) -> None:
    paths = model_paths(work)
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as pool:
        list(pool.map(sha256_file, paths))


def step_file_digest(work: Path) -> None:
    # Its 256 KiB bytearray lands 16 bytes into a page or not, as malloc's state has it; when
    # it does, the kernel's copy into it is ~40% slower on AMD EPYC (see registry/signing.py).
    for path in model_paths(work):
        with open(path, "rb") as src:
            hashlib.file_digest(src, "sha256")


def step_sha256sum(work: Path) -> None:
    run(["sha256sum", *map(str, model_paths(work))])


def step_openssl(work: Path) -> None:
    run(["openssl", "dgst", "-sha256", *map(str, model_paths(work))])


STEPS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "hash": ("aidlc hash_model_dir", step_hash),
    "sign": ("aidlc sign_model", step_sign),
    "verify": ("aidlc verify_model", step_verify),
    "cli-sign": ("model_signing CLI: sign key", step_cli_sign),
    "cli-verify": ("model_signing CLI: verify key (aidlc's signature)", step_cli_verify),
    "hashlib": ("plain: hashlib.sha256 read loop, one thread", step_hashlib),
    "hashlib-threads": ("plain: hashlib.sha256 read loop, thread per file", step_hashlib_threads),
    "file-digest": ("plain: hashlib.file_digest, one thread", step_file_digest),
    "sha256sum": ("plain: sha256sum", step_sha256sum),
    "openssl": ("plain: openssl dgst -sha256", step_openssl),
}


def run_child_step(name: str, work: Path) -> None:
    # Import before the clock starts: the steps time work, not interpreter start-up
    # (except the CLI steps, whose start-up is part of what a CLI user waits for).
    import aidlc.registry.signing  # noqa: F401

    # This VM's memory reclaim evicts page cache that sat idle for seconds: read the model
    # once, untimed, so every step starts from the same, cached, input.
    buffer = bytearray(BUFFER)
    for path in model_paths(work):
        with open(path, "rb", buffering=0) as src:
            while src.readinto(buffer):
                pass
    started = time.perf_counter()
    STEPS[name][1](work)
    seconds = time.perf_counter() - started
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss": max(peak_rss(), children)}))


def peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM; ru_maxrss survives exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- the parent --------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*(B|KiB|MiB|GiB)?", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r}: write a size like 1GiB, 256MiB or 1048576")
    return int(match.group(1)) * UNITS[match.group(2) or ""]


def make_model(work: Path, size: int, files: int) -> None:
    """`files` files of size/files deterministic bytes (a seeded 64 MiB block, repeated)."""
    block = random.Random(0).randbytes(BLOCK)
    directory = model_dir(work)
    directory.mkdir()
    each = size // files
    for index in range(files):
        with open(directory / f"weights-{index:02d}.bin", "wb") as out:
            left = each if index < files - 1 else size - each * (files - 1)
            while left:
                piece = memoryview(block)[: min(left, BLOCK)]
                out.write(piece)
                left -= len(piece)


def make_keys(work: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    from aidlc.registry import signing

    key = signing.new_signing_key()
    (work / "key.der").write_bytes(signing.private_key_bytes(key))
    (work / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (work / "key.pub.pem").write_bytes(signing.public_key_pem(key))
    (work / "aidlc.sig").write_bytes(signing.sign_model(model_dir(work), key))


def measure(name: str, work: Path) -> tuple[float, int]:
    os.sync()
    child = subprocess.run(
        [sys.executable, __file__, "--step", name, "--dir", str(work)],
        stdout=subprocess.PIPE,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"step {name} failed with exit code {child.returncode}")
    result = json.loads(child.stdout)
    return float(result["seconds"]), int(result["peak_rss"])


def available_steps(wanted: list[str]) -> list[str]:
    missing = {"sha256sum": "sha256sum", "openssl": "openssl"}
    return [n for n in wanted if n not in missing or shutil.which(missing[n])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1GiB"))
    parser.add_argument("--layout", choices=[*LAYOUTS, "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated step names")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: /tmp)")
    parser.add_argument("--json", action="store_true", help="print raw samples as JSON")
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_child_step(args.step, args.dir)
        return

    steps = available_steps([s for s in args.steps.split(",") if s])
    if unknown := set(steps) - set(STEPS):
        raise SystemExit(f"unknown steps: {', '.join(sorted(unknown))}")
    layouts = list(LAYOUTS) if args.layout == "both" else [args.layout]
    base = args.dir or Path(tempfile.gettempdir())
    results: dict[str, dict[str, list[tuple[float, int]]]] = {}
    for layout in layouts:
        work = Path(tempfile.mkdtemp(prefix="aidlc-bench-sign-", dir=base))
        try:
            make_model(work, args.size, LAYOUTS[layout])
            make_keys(work)
            runs: dict[str, list[tuple[float, int]]] = {name: [] for name in steps}
            shuffle = random.Random(1)
            for _ in range(args.repeat):
                order = list(steps)
                # This VM alternates fast and slow phases: a fixed order could pin a step to one.
                shuffle.shuffle(order)
                for name in order:
                    runs[name].append(measure(name, work))
            results[layout] = runs
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        samples = {
            layout: {name: _summary(runs[name]) for name in runs}
            for layout, runs in results.items()
        }
        print(json.dumps({"size": args.size, "repeat": args.repeat, "samples": samples}, indent=2))
    else:
        report(results, args.size, args.repeat, base)


def report(
    results: dict[str, dict[str, list[tuple[float, int]]]], size: int, repeat: int, base: Path
) -> None:
    print(
        f"{size / (1 << 20):.0f} MiB model, {repeat} runs per step, work folder on `{base}`, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, warm page cache\n"
    )
    for layout, runs in results.items():
        count = LAYOUTS[layout]
        print(f"**{count} file{'s' if count > 1 else ''}** ({layout})\n")
        print("| step | best GB/s | median GB/s | best s | peak RSS (MiB) |")
        print("|---|---:|---:|---:|---:|")
        for name, samples in runs.items():
            rates = [size / seconds / 1e9 for seconds, _ in samples]
            best_seconds = min(seconds for seconds, _ in samples)
            peak = max(rss for _, rss in samples) / (1 << 20)
            print(
                f"| {STEPS[name][0]} | {max(rates):.2f} | {statistics.median(rates):.2f} "
                f"| {best_seconds:.3f} | {peak:.0f} |"
            )
        print()


def _summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    return {"seconds": [s for s, _ in samples], "peak_rss": [r for _, r in samples]}


if __name__ == "__main__":
    main()
