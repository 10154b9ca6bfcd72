"""How the server admits a caller, without starting it: the bearer token, the token cache, the
per-address and per-token rate limits, the role check; and how a canary's divergence is counted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from aidlc.core import principals
from aidlc.core.config import ServeConfig
from aidlc.errors import AuthenticationFailed, PermissionDenied
from aidlc.serve import app
from aidlc.serve.app import NotReady, Server, TooManyRequests, _divergence
from aidlc.serve.predict import Prediction
from aidlc.serve.ratelimit import STORAGE_ENV

PATH = "/v1/models/bc:predict"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The server's monotonic clock, frozen and moved by hand (it times the token cache)."""
    now = [100.0]
    monkeypatch.setattr(app, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.fixture
def server_for(local_env: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`server_for(**serve_settings)`: a Server (not started) acting as `inference`."""
    monkeypatch.delenv(STORAGE_ENV, raising=False)
    opened: list[Any] = []

    def make(**settings: Any) -> Server:
        ws = local_env.open("inference")
        opened.append(ws)
        return Server(ws, ServeConfig.model_validate(settings))

    yield make
    for ws in opened:
        ws.close()


def request(authorization: str | None = None, *, client: str | None = "10.0.0.1", path: str = PATH):
    from starlette.requests import Request

    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "server": ("testserver", 80),
            "path": path,
            "query_string": b"",
            "headers": headers,
            "client": (client, 50000) if client else None,
        }
    )


def test_a_good_bearer_token_is_admitted_whatever_the_case_of_the_scheme(server_for, local_env):
    server = server_for()
    token = local_env.tokens["inference"]
    for header in (f"Bearer {token}", f"bearer {token}", f"BEARER  {token} "):
        assert server.caller(request(header), "model.predict").name == "inference"


def test_missing_or_malformed_credentials_are_refused(server_for, local_env):
    server = server_for()
    token = local_env.tokens["inference"]
    for header in (None, f"Basic {token}", "Bearer ", "Bearer    ", token):
        with pytest.raises(AuthenticationFailed) as refused:
            server.caller(request(header), "model.predict")
        assert (refused.value.message, refused.value.hint) == (
            "no bearer token given",
            "send the header 'Authorization: Bearer <token>'",
        )
    with pytest.raises(AuthenticationFailed, match="malformed token"):
        server.caller(request("Bearer aidlc_x"), "model.predict")


def test_a_caller_without_the_role_is_refused_and_the_denial_names_the_path(server_for, local_env):
    server = server_for()
    long_path = "/v1/models/" + "m" * 300 + ":predict"
    with pytest.raises(PermissionDenied, match=r"monitor may not model\.predict"):
        server.caller(
            request(f"Bearer {local_env.tokens['monitor']}", path=long_path), "model.predict"
        )
    with local_env.open("auditor") as auditor:
        (denial,) = [e for e in auditor.audit.events() if e.outcome == "denied"]
    assert (denial.actor, denial.action, denial.resource) == (
        "monitor",
        "model.predict",
        long_path[:200],
    )


def test_a_server_whose_credentials_stopped_holding_admits_nobody(server_for, local_env):
    server = server_for()
    server.revoked = "token revoked"
    with pytest.raises(NotReady) as refused:
        server.caller(request(f"Bearer {local_env.tokens['inference']}"), "model.predict")
    assert (refused.value.message, refused.value.hint) == (
        "this server no longer serves: its credentials stopped holding",
        "restart it with a valid token",
    )


def test_anonymous_and_unknown_token_attempts_share_one_limit_per_address(server_for):
    server = server_for(rate_limit="2/minute")
    unknown = "Bearer aidlc_" + "A" * 43
    with pytest.raises(AuthenticationFailed):
        server.caller(request(None), "model.predict")
    with pytest.raises(AuthenticationFailed):
        server.caller(request(unknown), "model.predict")
    for header in (None, unknown):
        with pytest.raises(TooManyRequests) as limited:
            server.caller(request(header), "model.predict")
        assert re.fullmatch(
            r"rate limit of 2/minute exceeded; retry in \d+ s", limited.value.message
        )
    # another address has its own window, and so has a caller without one
    with pytest.raises(AuthenticationFailed):
        server.caller(request(unknown, client="10.0.0.2"), "model.predict")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            server.caller(request(None, client=None), "model.predict")
    with pytest.raises(TooManyRequests):
        server.caller(request(None, client=None), "model.predict")
    assert server.metrics.rate_limited._value.get() == 3


def test_each_token_has_its_own_limit_and_cached_tokens_count_too(server_for, local_env):
    server = server_for(rate_limit="3/minute")
    inference = f"Bearer {local_env.tokens['inference']}"
    # first use: one hit on the address (before the token is known) and one on the token
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert server.caller(request(inference, client=client), "model.predict")
    with pytest.raises(TooManyRequests) as refused:
        server.caller(request(inference, client="10.0.0.4"), "model.predict")
    assert (refused.value.decision.allowed, refused.value.decision.limit) == (False, 3)
    assert refused.value.decision.retry_after >= 1
    monitor = f"Bearer {local_env.tokens['monitor']}"
    assert server.caller(request(monitor, client="10.0.0.9"), "monitor.read").name == "monitor"


def test_a_revoked_token_keeps_working_only_until_its_cache_entry_expires(
    server_for, local_env, clock
):
    server = server_for(token_cache_seconds=5)
    inference = f"Bearer {local_env.tokens['inference']}"
    assert server.caller(request(inference), "model.predict").name == "inference"
    with local_env.open("admin") as admin:
        (token,) = principals.list_tokens(admin, "inference")
        principals.revoke_token(admin, token.id)
    clock[0] = 104.9
    assert server.caller(request(inference), "model.predict").name == "inference"
    clock[0] = 105.0
    with pytest.raises(AuthenticationFailed, match="revoked"):
        server.caller(request(inference), "model.predict")


def test_without_a_cache_every_request_checks_the_token_again(server_for, local_env, clock):
    server = server_for(token_cache_seconds=0)
    inference = f"Bearer {local_env.tokens['inference']}"
    assert server.caller(request(inference), "model.predict").name == "inference"
    with local_env.open("admin") as admin:
        principals.disable(admin, "inference")
    with pytest.raises(AuthenticationFailed, match="disabled"):
        server.caller(request(inference), "model.predict")


def test_the_token_cache_is_bounded(server_for, local_env):
    server = server_for()
    cached = app._Cached(server.ws.principal, 0.0)
    server._tokens = {str(i): cached for i in range(10_000)}
    server.caller(request(f"Bearer {local_env.tokens['inference']}"), "model.predict")
    assert len(server._tokens) == 10_001
    server.caller(request(f"Bearer {local_env.tokens['monitor']}"), "monitor.read")
    assert len(server._tokens) == 1


def _prediction(values: list[Any]) -> Prediction:
    return Prediction(predictions=values, probabilities=None, ood=[[]] * len(values), anomaly=[])


def test_classifiers_diverge_on_every_row_with_another_class():
    production = SimpleNamespace(task="classification", divergence_tolerance=0.0)
    mine = _prediction(["a", "b", "a", "b"])
    theirs = _prediction(["a", "a", "b", "b"])
    assert _divergence(production, mine, theirs) == 2  # type: ignore[arg-type]
    assert _divergence(production, mine, mine) == 0  # type: ignore[arg-type]


def test_regressors_diverge_only_beyond_the_tolerance_either_way():
    production = SimpleNamespace(task="regression", divergence_tolerance=0.5)
    mine = _prediction([1.0, 1.0, 1.0, 1.0, -1.0])
    theirs = _prediction([1.5, 0.5, 1.6, 0.3, -1.0])
    assert _divergence(production, mine, theirs) == 2  # type: ignore[arg-type]


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_predictions_of_different_lengths_are_an_error_not_a_truncation(task):
    production = SimpleNamespace(task=task, divergence_tolerance=0.5)
    with pytest.raises(ValueError):
        _divergence(production, _prediction([1.0, 2.0]), _prediction([1.0]))  # type: ignore[arg-type]
