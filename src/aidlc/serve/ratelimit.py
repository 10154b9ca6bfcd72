"""Per-caller rate limits with the `limits` library: in process by default, Redis when shared.

A moving window: at most N requests in any period, counted per token (or per client address
before a token is known). With `redis://` storage every worker and replica counts in the same
window, so several workers share one limit. If the storage cannot be reached the request is
refused rather than let through: a limit that fails open is not a limit.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

from aidlc.errors import AidlcError, ConfigError

STORAGE_ENV = "AIDLC_RATE_LIMIT_STORAGE"


class LimitUnavailable(AidlcError):
    """The shared rate-limit storage cannot be reached, so nothing is let through."""

    http_status = 503


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class RateLimiter:
    """`hit(key)` counts one request against `rate` (e.g. "100/second") for `key`.

    >>> limiter = RateLimiter("2/minute")
    >>> [limiter.hit("token-a").allowed for _ in range(3)], limiter.hit("token-b").allowed
    ([True, True, False], True)
    """

    def __init__(self, rate: str, storage: str = "memory://") -> None:
        from limits import parse, strategies
        from limits import storage as storages
        from limits.errors import ConfigurationError

        uri = os.environ.get(STORAGE_ENV) or storage
        try:
            self.item = parse(rate)
            self._storage = storages.storage_from_string(uri)
        except (ValueError, ConfigurationError) as exc:
            raise ConfigError(f"serve.rate_limit or its storage is invalid: {exc}") from None
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)

    def hit(self, key: str) -> Decision:
        try:
            allowed = self._limiter.hit(self.item, key)
            stats = self._limiter.get_window_stats(self.item, key)
        except Exception as exc:  # any storage error (redis.ConnectionError, ...): fail closed
            raise LimitUnavailable(
                "the rate-limit storage is unavailable; requests are refused until it is back",
                hint=type(exc).__name__,
            ) from None
        retry = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, self.item.amount, max(0, stats.remaining), retry)

    def check(self) -> bool:
        """Whether the storage answers (for readiness)."""
        try:
            return bool(self._storage.check())
        except Exception:
            return False
