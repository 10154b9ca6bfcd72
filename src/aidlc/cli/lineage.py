"""`aidlc lineage`: where a model or dataset came from, and where it went."""

from __future__ import annotations

from aidlc.errors import UsageError


def lineage() -> None:
    """Show lineage (being built)."""
    raise UsageError("aidlc lineage is not available yet")
