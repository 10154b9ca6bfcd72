"""Audit log speed: durable appends per second on SQLite, and `verify` of a million events.

Run by hand:  .venv/bin/python benchmarks/bench_audit.py [--events 1000000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from aidlc.core.workspace import Workspace


def append_rate(ws: Workspace, total: int, batch: int) -> float:
    start = time.perf_counter()
    done = 0
    while done < total:
        n = min(batch, total - done)
        with ws.transaction() as session:
            ws.audit.append_many(
                session,
                [
                    {
                        "actor": "bench",
                        "action": "bench.event",
                        "resource": f"thing:{done + i}",
                        "details": {"i": done + i, "note": "a typical small payload"},
                    }
                    for i in range(n)
                ],
            )
        done += n
    return total / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        ws, _ = Workspace.init(Path(tmp) / "ws")
        rows = []
        for batch in (1, 10, 100, 1000):
            total = min(2000 if batch == 1 else 20_000, args.events)
            rows.append((batch, append_rate(ws, total, batch)))
        print("| events per transaction | durable events/s (SQLite WAL, synchronous=FULL) |")
        print("|---:|---:|")
        for batch, rate in rows:
            print(f"| {batch} | {rate:,.0f} |")
        remaining = args.events - ws.audit.size()
        start = time.perf_counter()
        append_rate(ws, remaining, args.batch)
        print(f"\nfilled to {ws.audit.size():,} events in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        verdict = ws.audit.verify()
        elapsed = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"audit verify of {verdict.size:,} events and {verdict.heads_checked:,} signed heads: "
            f"{elapsed:.2f} s, ok={verdict.ok}, peak RSS of the process {rss:.0f} MB"
        )
        start = time.perf_counter()
        proof = ws.audit.prove(verdict.size // 2)
        print(
            f"audit prove (one event of {verdict.size:,}): {time.perf_counter() - start:.2f} s, "
            f"{len(proof.audit_path)} hashes"
        )
        ws.close()


if __name__ == "__main__":
    main()
