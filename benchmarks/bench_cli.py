"""`aidlc --help` wall time (goal: under 0.3 s), median of repeated cold processes.

Run by hand:  .venv/bin/python benchmarks/bench_cli.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("aidlc"))
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "aidlc --help": [exe, "--help"],
        "aidlc audit --help": [exe, "audit", "--help"],
    }
    print("| command | median wall time (s) | min (s) |")
    print("|---|---:|---:|")
    for name, cmd in commands.items():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - start)
        print(f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} |")


if __name__ == "__main__":
    main()
