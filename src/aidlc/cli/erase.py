"""`aidlc erase --subject ID`: GDPR erasure of one data subject."""

from __future__ import annotations

from aidlc.errors import UsageError


def erase() -> None:
    """Erase a data subject (being built)."""
    raise UsageError("aidlc erase is not available yet")
