"""An inbox folder: every file dropped into it is offered to the gate, then moved aside.

Accepted files move to `processed/`, everything else to `rejected/` (their bytes are also kept,
encrypted, in the raw zone and in quarantine). A file is picked up only once its size has stopped
changing between two polls, so a file still being copied in is left alone.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from aidlc.errors import AidlcError, InvalidInput

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

PROCESSED = "processed"
REJECTED = "rejected"


def _candidates(inbox: Path) -> dict[Path, int]:
    found = {}
    for entry in sorted(inbox.iterdir()):
        if entry.name.startswith(".") or entry.name.endswith((".part", ".tmp")):
            continue
        if entry.is_file() and not entry.is_symlink():
            found[entry] = entry.stat().st_size
    return found


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), target)
    return target


def watch_inbox(
    ws: Workspace,
    inbox: Path,
    dataset: str,
    *,
    once: bool = False,
    on_result: Callable[[str, str, str], None] | None = None,
    max_polls: int | None = None,
) -> int:
    """Ingest files from `inbox` until interrupted (or one sweep with `once`); returns the count."""
    from aidlc.data.ingest import ingest

    if not inbox.is_dir():
        raise InvalidInput(f"{inbox} is not a folder")
    interval = ws.config.data.inbox_poll_seconds
    seen: dict[Path, int] = {}
    handled = 0
    polls = 0
    try:
        while True:
            current = _candidates(inbox)
            ready = [p for p, size in current.items() if once or seen.get(p) == size]
            for path in ready:
                try:
                    result = ingest(ws, path, dataset)
                    outcome, detail = result.outcome, result.ref or result.reason
                except AidlcError as exc:
                    outcome, detail = "unusable", exc.message
                folder = PROCESSED if outcome in ("accepted", "partial") else REJECTED
                _move(path, inbox / folder)
                handled += 1
                if on_result:
                    on_result(path.name, outcome, detail)
            seen = {p: s for p, s in current.items() if p not in ready}
            polls += 1
            if once or (max_polls is not None and polls >= max_polls):
                return handled
            time.sleep(interval)
    except KeyboardInterrupt:
        return handled
