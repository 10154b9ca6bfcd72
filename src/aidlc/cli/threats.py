"""`aidlc threat-model`: the workspace's threat model from its actual configuration."""

from __future__ import annotations

from aidlc.errors import UsageError


def threat_model() -> None:
    """Print the workspace's threat model (being built)."""
    raise UsageError("aidlc threat-model is not available yet")
