"""The rate limiter on its own: a moving window per key, honest retry times, and a limit that
fails closed when its shared storage cannot be reached."""

from __future__ import annotations

import time

import pytest

from aidlc.errors import ConfigError
from aidlc.serve.ratelimit import STORAGE_ENV, Decision, LimitUnavailable, RateLimiter

# Nothing listens on port 1: a Redis storage there fails at once, as a lost Redis would.
UNREACHABLE = "redis://127.0.0.1:1"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A frozen wall clock (the limits library and the limiter both read `time.time`)."""
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


@pytest.fixture(autouse=True)
def _no_storage_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STORAGE_ENV, raising=False)


def test_each_key_gets_its_own_window_and_the_refusal_says_when_to_retry(clock):
    limiter = RateLimiter("2/minute")
    assert limiter.hit("token:a") == Decision(allowed=True, limit=2, remaining=1, retry_after=0)
    assert limiter.hit("token:a") == Decision(allowed=True, limit=2, remaining=0, retry_after=0)
    assert limiter.hit("token:a") == Decision(allowed=False, limit=2, remaining=0, retry_after=60)
    assert limiter.hit("token:b") == Decision(allowed=True, limit=2, remaining=1, retry_after=0)


def test_retry_after_rounds_up_to_whole_seconds_and_the_window_moves(clock):
    limiter = RateLimiter("1/minute")
    assert limiter.hit("k").allowed
    clock[0] += 59.5
    refused = limiter.hit("k")
    assert (refused.allowed, refused.retry_after) == (False, 1)
    clock[0] += 1.0
    assert limiter.hit("k").allowed


def test_the_storage_setting_can_be_overridden_from_the_environment(monkeypatch, clock):
    monkeypatch.setenv(STORAGE_ENV, "memory://")
    limiter = RateLimiter("1/minute", storage=UNREACHABLE)
    assert limiter.hit("k").allowed and limiter.check()
    monkeypatch.setenv(STORAGE_ENV, "nosuch://host")
    with pytest.raises(ConfigError, match=r"serve\.rate_limit or its storage is invalid"):
        RateLimiter("1/minute")


def test_a_bad_rate_is_a_configuration_error():
    with pytest.raises(ConfigError, match=r"serve\.rate_limit or its storage is invalid"):
        RateLimiter("many per fortnight")


def test_an_unreachable_storage_refuses_every_request_and_fails_readiness():
    limiter = RateLimiter("100/second", storage=UNREACHABLE)
    assert limiter.check() is False
    with pytest.raises(LimitUnavailable) as refused:
        limiter.hit("token:a")
    assert refused.value.message == (
        "the rate-limit storage is unavailable; requests are refused until it is back"
    )
    assert refused.value.http_status == 503
    assert refused.value.hint == "ConnectionError"
    assert RateLimiter("100/second").check() is True


def test_a_storage_whose_health_check_breaks_is_not_ready(monkeypatch):
    limiter = RateLimiter("100/second")

    def broken() -> bool:
        raise OSError("connection reset")

    monkeypatch.setattr(limiter._storage, "check", broken)
    assert limiter.check() is False
