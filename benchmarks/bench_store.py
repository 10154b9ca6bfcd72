"""Throughput and memory of encrypted put/get through the local object store, vs a plain copy.

Run by hand (never as a timed test):

    .venv/bin/python benchmarks/bench_store.py [--dir /tmp] [--size-mib 1024] [--repeat 5]

Every step runs in its own child process, which reads its input once untimed (so it starts
from the page cache) and reports its own peak RSS (VmHWM); dirty pages are flushed (`sync`)
before each step so one step's writeback does not slow the next.
Prints a Markdown table: best and median MiB/s over the repeats, the ratio of the best runs to
the plain read/write loop (same 1 MiB buffer) and to the like-for-like plain step, and peak
RSS. Files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
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
CONTEXT = {"workspace": "bench", "object": "raw/bench", "version": "1"}
KEY = "raw/bench/00000001"


# --- steps, each run in a child process --------------------------------------------------------


def step_copyfile(work: Path) -> dict[str, str]:
    shutil.copyfile(work / "source", work / "copy")
    return {}


def copy_loop(source: Path, target: Path, *, fsync: bool = False) -> None:
    buffer = bytearray(BUFFER)
    view = memoryview(buffer)
    with open(source, "rb", buffering=0) as src, open(target, "wb", buffering=0) as dst:
        while count := src.readinto(buffer):
            dst.write(view[:count])
        if fsync:
            os.fsync(dst.fileno())


def step_copy_loop(work: Path) -> dict[str, str]:
    copy_loop(work / "source", work / "copy")
    return {}


def step_copy_loop_fsync(work: Path) -> dict[str, str]:
    copy_loop(work / "source", work / "copy", fsync=True)
    return {}


def step_read_loop(work: Path) -> dict[str, str]:
    copy_loop(work / "source", Path(os.devnull))
    return {}


def open_keys(work: Path) -> tuple[Any, Any]:
    from aidlc.core.keys import FileKeyProvider
    from aidlc.core.store import LocalObjectStore

    return FileKeyProvider.open(work / "keyring.json"), LocalObjectStore(work / "store")


def step_put(work: Path) -> dict[str, str]:
    from aidlc.core.crypto import encrypt_stream

    keys, store = open_keys(work)
    data_key, wrapped = keys.generate_data_key(CONTEXT)
    (work / "wrapped").write_bytes(wrapped)
    with open(work / "source", "rb") as src, store.writer(KEY) as out:
        info = encrypt_stream(src, out, key=data_key, associated_data=KEY.encode())
    return {"sha256": info.plaintext_sha256}


def decrypt_to(work: Path, target: Path) -> dict[str, str]:
    from aidlc.core.crypto import decrypt_stream

    keys, store = open_keys(work)
    data_key = keys.unwrap((work / "wrapped").read_bytes(), CONTEXT)
    with store.reader(KEY) as src, open(target, "wb") as dst:
        info = decrypt_stream(src, dst, key=data_key, associated_data=KEY.encode())
    return {"sha256": info.plaintext_sha256}


def step_get(work: Path) -> dict[str, str]:
    return decrypt_to(work, work / "copy")


def step_encrypt_null(work: Path) -> dict[str, str]:
    from aidlc.core.crypto import encrypt_stream, new_data_key

    with open(work / "source", "rb") as src, open(os.devnull, "wb") as dst:
        info = encrypt_stream(src, dst, key=new_data_key(), associated_data=KEY.encode())
    return {"sha256": info.plaintext_sha256}


def step_decrypt_null(work: Path) -> dict[str, str]:
    return decrypt_to(work, Path(os.devnull))


# name: (label, function, the plain step it is compared with like for like)
STEPS: dict[str, tuple[str, Callable[[Path], dict[str, str]], str]] = {
    "copyfile": ("plain: shutil.copyfile", step_copyfile, "copy-loop"),
    "copy-loop": ("plain: read/write loop, 1 MiB buffer", step_copy_loop, "copy-loop"),
    "copy-loop-fsync": ("plain: read/write loop + fsync", step_copy_loop_fsync, "copy-loop-fsync"),
    "read-loop": ("plain: read loop -> /dev/null", step_read_loop, "read-loop"),
    "put": ("put: encrypt_stream -> LocalObjectStore (fsync, link)", step_put, "copy-loop-fsync"),
    "get": ("get: LocalObjectStore -> decrypt_stream -> file", step_get, "copy-loop"),
    "encrypt-null": ("encrypt_stream file -> /dev/null", step_encrypt_null, "read-loop"),
    "decrypt-null": ("decrypt_stream object -> /dev/null", step_decrypt_null, "read-loop"),
}


def run_child_step(name: str, work: Path) -> None:
    # Import before the clock starts: the steps time work, not interpreter start-up.
    import aidlc.core.crypto
    import aidlc.core.keys
    import aidlc.core.store  # noqa: F401

    # Read the input once first: this VM's memory reclaim (DAMON) evicts page cache that sat
    # idle for seconds, and every step should start from the same, cached, input.
    for path in [work / "source", *(work / "store").rglob("*")]:
        if path.is_file():
            copy_loop(path, Path(os.devnull))
    started = time.perf_counter()
    result = STEPS[name][1](work)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss": peak_rss(), **result}))


def peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM).

    Not getrusage: on Linux ru_maxrss survives exec, so a child would report the RSS of the
    parent it was forked from.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- the parent --------------------------------------------------------------------------------


def make_source(path: Path, size: int) -> str:
    """Write `size` deterministic bytes (a seeded 64 MiB block, repeated); return their SHA-256."""
    block = random.Random(0).randbytes(BLOCK)
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            piece = memoryview(block)[: min(left, BLOCK)]
            out.write(piece)
            digest.update(piece)
            left -= len(piece)
    return digest.hexdigest()


def measure(name: str, work: Path) -> tuple[float, int, dict[str, str]]:
    """Run one step in a child; return (seconds, peak RSS in bytes, its result)."""
    os.sync()
    child = subprocess.Popen(
        [sys.executable, __file__, "--step", name, "--dir", str(work)], stdout=subprocess.PIPE
    )
    output, _ = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"step {name} failed with exit code {child.returncode}")
    result = json.loads(output)
    return float(result.pop("seconds")), int(result.pop("peak_rss")), result


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(BUFFER):
            digest.update(chunk)
    return digest.hexdigest()


def step_order(shuffle: random.Random) -> list[str]:
    """All steps in a random order that still puts `put` before the steps that read its object.

    This VM's page-cache writes alternate between fast and slow runs; a fixed order could pin one
    step to the slow phase every time.
    """
    readers = ["get", "decrypt-null"]
    order = [name for name in STEPS if name not in readers]
    shuffle.shuffle(order)
    for name in readers:
        order.insert(shuffle.randint(order.index("put") + 1, len(order)), name)
    return order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: under /tmp)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        run_child_step(args.step, args.dir)
        return

    from aidlc.core.keys import FileKeyProvider

    base = args.dir or Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="aidlc-bench-", dir=base))
    size = args.size_mib << 20
    try:
        source_sha = make_source(work / "source", size)
        FileKeyProvider.create(work / "keyring.json")
        runs: dict[str, list[tuple[float, int]]] = {name: [] for name in STEPS}
        shuffle = random.Random(1)
        for _ in range(args.repeat):
            for name in step_order(shuffle):
                (work / "copy").unlink(missing_ok=True)
                if name == "put":
                    shutil.rmtree(work / "store", ignore_errors=True)
                seconds, rss, result = measure(name, work)
                if result.get("sha256", source_sha) != source_sha:
                    raise SystemExit(f"step {name} saw different bytes than the source")
                if name == "get" and file_sha256(work / "copy") != source_sha:
                    raise SystemExit("get did not reproduce the source")
                runs[name].append((seconds, rss))
        report(runs, size, args.repeat, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(runs: dict[str, list[tuple[float, int]]], size: int, repeat: int, work: Path) -> None:
    """Ratios use the best run of each step: on a shared VM the slow runs measure the neighbours."""
    mib = size / (1 << 20)
    best = {name: max(mib / s for s, _ in samples) for name, samples in runs.items()}
    median = {
        name: statistics.median(mib / s for s, _ in samples) for name, samples in runs.items()
    }
    print(
        f"{mib:.0f} MiB, {repeat} runs per step, work folder on `{work.parent}`, "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}\n"
    )
    print(
        "| step | best MiB/s | median MiB/s | best vs copy loop "
        "| best vs like-for-like plain step | peak RSS (MiB) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, (label, _, baseline) in STEPS.items():
        peak = max(rss for _, rss in runs[name]) / (1 << 20)
        like = f"{best[name] / best[baseline]:.2f} ({baseline})" if baseline != name else ""
        print(
            f"| {label} | {best[name]:.0f} | {median[name]:.0f} "
            f"| {best[name] / best['copy-loop']:.2f} | {like} | {peak:.0f} |"
        )


if __name__ == "__main__":
    main()
