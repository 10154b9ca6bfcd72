"""`aidlc backup DIR` and `aidlc restore DIR`: encrypted, verified snapshots."""

from __future__ import annotations

from aidlc.errors import UsageError


def backup() -> None:
    """Write a snapshot of the workspace (being built)."""
    raise UsageError("aidlc backup is not available yet")


def restore() -> None:
    """Rebuild a workspace from a snapshot (being built)."""
    raise UsageError("aidlc restore is not available yet")
