"""`aidlc doctor`: the security posture of the running configuration."""

from __future__ import annotations

from aidlc.errors import UsageError


def doctor() -> None:
    """Check the workspace's security posture (being built)."""
    raise UsageError("aidlc doctor is not available yet")
