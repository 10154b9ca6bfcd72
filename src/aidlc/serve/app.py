"""The inference server: an ASGI app that authenticates, limits, validates, predicts and logs.

Every request to a model passes, in order: a bearer token (cached for `token_cache_seconds`),
the caller's rate limit, the role check, the body size limit, JSON parsing, the version's input
schema, then the model. `Server` holds what lives between requests: the verified models it
serves, the rollouts it judges, the log writers; a poller thread swaps a model in when its
`production` alias moves, after the new version verifies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from aidlc.core import auth
from aidlc.core.audit import current_request_id, set_request_id
from aidlc.core.config import ServeConfig
from aidlc.errors import AidlcError, AuthenticationFailed, InvalidInput, NotFound
from aidlc.serve import observe, rollout
from aidlc.serve.kpis import push_kpis
from aidlc.serve.predict import InvalidRecords, Prediction, ServedModel
from aidlc.serve.predlog import PredictionLog, new_prediction_ids, now
from aidlc.serve.ratelimit import Decision, RateLimiter

if TYPE_CHECKING:
    from aidlc.core.workspace import Workspace

log = logging.getLogger("aidlc.serve")
access = logging.getLogger("aidlc.access")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
_PREDICTION_ID = re.compile(r"^[0-9a-f]{32}\Z")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cache-control", b"no-store"),
]
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# Swagger UI (served from the installed swagger-ui-bundle, never a CDN) needs its inline script.
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'",
)
# The web console: its own stylesheet, no inline script or style, forms posting only here.
_CONSOLE_CSP = (
    b"content-security-policy",
    b"default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


# -- responses and errors -----------------------------------------------------------------------


class JSON(JSONResponse):
    """JSON by orjson; a JSONResponse, so the OpenAPI document says the body is JSON."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


class TooLarge(AidlcError):
    http_status = 413


class TooManyRequests(AidlcError):
    http_status = 429

    def __init__(self, message: str, decision: Decision) -> None:
        super().__init__(message)
        self.decision = decision


class Unsupported(AidlcError):
    http_status = 415


class NotReady(AidlcError):
    http_status = 503


def error_response(exc: AidlcError) -> JSON:
    body: dict[str, Any] = {"error": exc.message}
    if exc.hint:
        body["hint"] = exc.hint
    if isinstance(exc, InvalidRecords):
        body["problems"] = exc.problems
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationFailed):
        headers["www-authenticate"] = 'Bearer realm="aidlc"'
    if isinstance(exc, TooManyRequests):
        headers["retry-after"] = str(exc.decision.retry_after)
        headers["x-ratelimit-limit"] = str(exc.decision.limit)
        headers["x-ratelimit-remaining"] = "0"
    return JSON(body, status_code=exc.http_status, headers=headers)


# -- the state of a server process ---------------------------------------------------------------


@dataclass
class Slot:
    """What answers for one model name: production, and a candidate while a rollout runs."""

    production: ServedModel
    deployment: rollout.Deployment | None = None
    candidate: ServedModel | None = None
    judge: rollout.CanaryJudge | None = None
    concluding: bool = False


@dataclass
class _Cached:
    principal: auth.Principal
    until: float


@dataclass
class Server:
    """A server process's models, limits, caches and log writers."""

    ws: Workspace
    config: ServeConfig
    names: list[str] | None = None
    tls: bool = False
    span_exporter: Any = None
    slots: dict[str, Slot] = field(default_factory=dict)
    # Threads that live and die with the server (the CLI adds the monitor scheduler): anything
    # with start() and stop().
    companions: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.metrics = observe.Metrics()
        self.limiter = RateLimiter(self.config.rate_limit, self.config.rate_limit_storage)
        traced = observe.tracer(self.config.tracing, self.span_exporter)
        self.tracer: Any = traced[0] if traced else None
        self._provider: Any = traced[1] if traced else None
        self.predictions: PredictionLog | None = None
        self.feedback: PredictionLog | None = None
        self._tokens: dict[str, _Cached] = {}
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self.ready = False
        self.revoked: str | None = None  # why the server's own credentials stopped holding

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        dropped = self.metrics.log_dropped.inc
        self.predictions = PredictionLog(
            self.ws, self.config.prediction_log, "predictions", dropped
        )
        self.feedback = PredictionLog(self.ws, self.config.prediction_log, "feedback", dropped)
        self.refresh()
        self.ready = True
        self._poller = threading.Thread(target=self._poll, name="aidlc-alias-poller", daemon=True)
        self._poller.start()
        for companion in self.companions:
            companion.start()

    def close(self) -> None:
        for companion in self.companions:
            companion.stop()
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=30)
        for writer in (self.predictions, self.feedback):
            if writer is not None:
                writer.close()
        if self._provider is not None:
            self._provider.shutdown()

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_seconds):
            try:
                # The server's own token can be revoked while it runs: then it stops answering
                # (503 on every request, /readyz failing) instead of serving as nobody's agent.
                self.ws.recheck()
            except AuthenticationFailed as exc:
                self.revoked = exc.message
                self.ready = False
                log.error("the server's credentials no longer hold: %s; stopping service", exc)
                return
            except Exception:  # a database hiccup: checked again next time
                log.exception("rechecking the server's credentials failed")
            try:
                self.refresh()
            except Exception:  # the poller must outlive a database hiccup; it retries next time
                log.exception("refreshing the served models failed")

    # -- what is served ----------------------------------------------------------------------

    def _load(self, name: str, version: int) -> ServedModel:
        from aidlc.registry import versions

        ref = f"{name}@{version}"
        loaded = versions.load_model(self.ws, ref, require_approved=True)
        baseline = orjson.loads(versions.read_document(self.ws, ref, "baseline.json"))
        digest = versions.resolve(self.ws, ref).model_digest
        return ServedModel(name, version, digest, loaded, baseline, ood_z=self.config.ood_z)

    def _wanted(self) -> list[str]:
        from aidlc.registry import versions

        if self.names is not None:
            return self.names
        return [m["name"] for m in versions.list_models(self.ws) if "production" in m["aliases"]]

    def refresh(self) -> None:
        """Load what production and rollouts now name; keep serving the old on any failure."""
        from aidlc.registry import approval

        for name in self._wanted():
            slot = self.slots.get(name)
            try:
                version = approval.aliases(self.ws, name).get("production")
            except NotFound:
                version = None
            if version is None:
                continue
            if slot is None or slot.production.version != version:
                try:
                    served = self._load(name, version)
                except AidlcError as exc:  # audited and alerted by the registry
                    log.error(
                        "not serving %s@%d: %s", name, version, exc.message, extra={"model": name}
                    )
                    continue
                if slot is None:
                    slot = Slot(production=served)
                    self.slots[name] = slot
                else:
                    slot.production = served
                log.info("serving %s@%d", name, version, extra={"model": name})
            self._refresh_rollout(name, slot)
            self._show(name)

    def _refresh_rollout(self, name: str, slot: Slot) -> None:
        deployment = rollout.active(self.ws, name)
        if deployment is None:
            slot.deployment = slot.candidate = slot.judge = None
            slot.concluding = False
            return
        if slot.deployment is not None and slot.deployment.id == deployment.id:
            return
        try:
            candidate = self._load(name, deployment.candidate)
        except AidlcError as exc:
            log.error("cannot load the %s candidate: %s", deployment.mode, exc.message)
            return
        slot.candidate = candidate
        slot.judge = rollout.CanaryJudge(deployment.policy)
        slot.concluding = False
        slot.deployment = deployment

    def _show(self, name: str) -> None:
        slot = self.slots.get(name)
        if slot is None:
            return
        roles: dict[str, tuple[int, str] | None] = {
            "production": (slot.production.version, slot.production.digest)
        }
        if slot.candidate is not None and slot.deployment is not None:
            roles[slot.deployment.mode] = (slot.candidate.version, slot.candidate.digest)
        self.metrics.served(name, roles)

    def slot(self, name: str) -> Slot:
        slot = self.slots.get(name)
        if slot is None:
            raise NotFound(f"no model named {name[:100]!r} is served here")
        return slot

    # -- callers -----------------------------------------------------------------------------

    def caller(self, request: Request, action: str) -> auth.Principal:
        """The request's principal, rate limited, holding a role that grants `action`."""
        if self.revoked is not None:
            raise NotReady(
                "this server no longer serves: its credentials stopped holding",
                hint="restart it with a valid token",
            )
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        client = request.client.host if request.client else "unknown"
        if scheme.lower() != "bearer" or not token.strip():
            self._limit(f"ip:{client}")
            raise AuthenticationFailed(
                "no bearer token given", hint="send the header 'Authorization: Bearer <token>'"
            )
        token = token.strip()
        digest = auth.hash_token(token) if auth.token_looks_valid(token) else ""
        cached = self._tokens.get(digest) if digest else None
        clock = time.monotonic()
        if cached is not None and cached.until > clock:
            principal = cached.principal
        else:
            # Before a token is known good, its attempts count against the client address, so
            # guessing tokens (each failure is audited) is as limited as using one.
            self._limit(f"ip:{client}")
            principal = self.ws.identify(token)
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[digest] = _Cached(principal, clock + self.config.token_cache_seconds)
        self._limit(f"token:{principal.token_id}")
        return self.ws.authorize(action, request.url.path[:200], principal=principal)

    def _limit(self, key: str) -> None:
        decision = self.limiter.hit(key)
        if not decision.allowed:
            self.metrics.rate_limited.inc()
            raise TooManyRequests(
                f"rate limit of {self.config.rate_limit} exceeded; retry in "
                f"{decision.retry_after} s",
                decision,
            )

    # -- predictions -------------------------------------------------------------------------

    def predict(
        self,
        name: str,
        records: Any,
        principal: auth.Principal,
        *,
        probabilities: bool = False,
    ) -> tuple[ServedModel, Prediction, list[str], BackgroundTask | None]:
        """Validate, route, predict and log one request's records."""
        slot = self.slot(name)
        started = time.perf_counter()
        production = slot.production
        rows = production.check(records, self.config.max_batch_rows)
        logged = self.predictions is not None and self.predictions.sampled()
        # Scores for the monitor's ROC AUC: computed for logged requests when configured.
        probabilities = probabilities or (
            logged
            and self.config.prediction_log.scores
            and production.task == "classification"
            and len(production.classes or []) == 2
        )
        answer, route, background = production, "production", None
        deployment, candidate, judge = slot.deployment, slot.candidate, slot.judge
        if deployment is not None and candidate is not None and judge is not None:
            if deployment.mode == "canary" and secrets.randbelow(10_000) < deployment.percent * 100:
                result, used = self._canary(slot, candidate, judge, rows, probabilities)
                if used:
                    answer, route = candidate, "canary"
            else:
                t0 = time.perf_counter()
                result = production.predict(rows, probabilities=probabilities)
                if deployment.mode == "shadow":
                    took = (time.perf_counter() - t0) * 1000
                    background = BackgroundTask(self._shadow, slot, rows, result, took)
        else:
            result = production.predict(rows, probabilities=probabilities)
        flagged = [i for i, reasons in enumerate(result.ood) if reasons]
        if flagged and self.config.ood_action == "reject":
            raise InvalidRecords(
                f"{len(flagged)} of {len(rows)} records are outside the training distribution",
                [
                    {"row": i, "field": None, "problem": "; ".join(result.ood[i])}
                    for i in flagged[:20]
                ],
            )
        ids = new_prediction_ids(len(rows))
        self._count(answer, route, result, len(flagged))
        latency = (time.perf_counter() - started) * 1000
        if logged:
            self._log(answer, route, principal, rows, result, ids, latency)
        return answer, result, ids, background

    def _canary(
        self,
        slot: Slot,
        candidate: ServedModel,
        judge: rollout.CanaryJudge,
        rows: list[dict[str, Any]],
        probabilities: bool,
    ) -> tuple[Prediction, bool]:
        """Answer from the candidate, compared with production; production answers on error.

        `candidate` and `judge` are the request's own references: a verdict reached on another
        request may clear the slot's while this one runs."""
        production = slot.production
        t0 = time.perf_counter()
        try:
            mine: Prediction | None = candidate.predict(rows, probabilities=probabilities)
        except Exception:  # a broken candidate: counted against it, production answers instead
            log.warning("the canary %s failed on a request", candidate.ref, exc_info=True)
            mine = None
        t1 = time.perf_counter()
        theirs = production.predict(rows, probabilities=probabilities)
        t2 = time.perf_counter()
        diverged = 0 if mine is None else _divergence(production, mine, theirs)
        judge.observe(
            error=mine is None,
            candidate_ms=(t1 - t0) * 1000,
            production_ms=(t2 - t1) * 1000,
            compared=0 if mine is None else len(rows),
            diverged=diverged,
        )
        self._judge(slot, judge)
        return (theirs, False) if mine is None else (mine, True)

    def _shadow(
        self, slot: Slot, rows: list[dict[str, Any]], theirs: Prediction, production_ms: float
    ) -> None:
        """Mirror a request to the shadow after its answer was sent, and judge the shadow."""
        candidate, judge = slot.candidate, slot.judge
        if candidate is None or judge is None:
            return
        production = slot.production
        t0 = time.perf_counter()
        try:
            mine: Prediction | None = candidate.predict(rows)
        except Exception:
            mine = None
        elapsed = (time.perf_counter() - t0) * 1000
        judge.observe(
            error=mine is None,
            candidate_ms=elapsed,
            production_ms=production_ms,
            compared=0 if mine is None else len(rows),
            diverged=0 if mine is None else _divergence(production, mine, theirs),
        )
        self._judge(slot, judge)

    def _judge(self, slot: Slot, judge: rollout.CanaryJudge) -> None:
        deployment = slot.deployment
        if deployment is None or slot.judge is not judge or slot.concluding:
            return
        if judge.requests % 10 and judge.requests < judge.policy.promote_after:
            return
        decided = judge.verdict()
        if decided is None:
            return
        outcome, evidence = decided
        if deployment.mode == "shadow" and outcome == "promoted":
            outcome = "completed"
        slot.concluding = True
        threading.Thread(
            target=self._conclude, args=(slot, deployment, outcome, evidence), daemon=True
        ).start()

    def _conclude(
        self, slot: Slot, deployment: rollout.Deployment, outcome: str, evidence: dict[str, Any]
    ) -> None:
        try:
            rollout.conclude(self.ws, deployment, outcome, evidence)
        except Exception:
            log.exception("could not conclude deployment %d", deployment.id)
            slot.concluding = False
            return
        log.info(
            "%s %s of %s@%d",
            outcome,
            deployment.mode,
            deployment.name,
            deployment.candidate,
            extra={"evidence": evidence},
        )
        if outcome == "promoted" and slot.candidate is not None:
            slot.production = slot.candidate
        slot.deployment = slot.candidate = slot.judge = None
        self._show(deployment.name)

    def _count(self, served: ServedModel, route: str, result: Prediction, ood: int) -> None:
        m = self.metrics
        version = str(served.version)
        m.rows.labels(served.name).inc(len(result.predictions))
        if ood:
            m.ood.labels(served.name).inc(ood)
        if served.task == "classification":
            counts: dict[str, int] = {}
            for label in result.predictions:
                counts[str(label)] = counts.get(str(label), 0) + 1
            for label, n in counts.items():
                m.predictions.labels(served.name, version, route, label).inc(n)
        else:
            values = m.values.labels(served.name, version)
            for value in result.predictions:
                values.observe(value)
            m.predictions.labels(served.name, version, route, "").inc(len(result.predictions))

    def _log(
        self,
        served: ServedModel,
        route: str,
        principal: auth.Principal,
        rows: list[dict[str, Any]],
        result: Prediction,
        ids: list[str],
        latency: float,
    ) -> None:
        if self.predictions is None:
            return
        at = now()
        request_id = current_request_id()
        per_row = latency / len(rows)
        # a binary classifier's probability of its second class, for ROC AUC in monitoring
        scores = (
            [p[1] for p in result.probabilities]
            if result.probabilities is not None and len(served.classes or []) == 2
            else None
        )
        self.predictions.add(
            [
                {
                    "prediction_id": ids[i],
                    "at": at,
                    "model": served.name,
                    "version": served.version,
                    "route": route,
                    "principal": principal.name,
                    "request_id": request_id,
                    "latency_ms": per_row,
                    "inputs": orjson.dumps(row, default=str).decode(),
                    "output": orjson.dumps(result.predictions[i]).decode(),
                    "ood": bool(result.ood[i]),
                    "anomaly": result.anomaly[i],
                    "score": scores[i] if scores else None,
                }
                for i, row in enumerate(rows)
            ]
        )


def _divergence(production: ServedModel, mine: Prediction, theirs: Prediction) -> int:
    """Rows where candidate and production disagree: another class, or (regressors) a value
    further apart than a tenth of the training predictions' standard deviation."""
    if production.task == "classification":
        return sum(a != b for a, b in zip(mine.predictions, theirs.predictions, strict=True))
    tolerance = production.divergence_tolerance
    return sum(
        abs(a - b) > tolerance for a, b in zip(mine.predictions, theirs.predictions, strict=True)
    )


# -- the ASGI app --------------------------------------------------------------------------------


class Observe:
    """Request ids, security headers, metrics, the access log and a trace span per request."""

    def __init__(self, app: Any, server: Server) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else secrets.token_hex(16)
        set_request_id(request_id)
        path: str = scope["path"]
        headers = list(_SECURITY_HEADERS)
        if path.startswith("/docs"):
            headers.append(_DOCS_CSP)
        elif path == "/console" or path.startswith("/console/"):
            headers.append(_CONSOLE_CSP)
        else:
            headers.append(_API_CSP)
        if self.server.tls:
            headers.append(_HSTS)
        headers.append((b"x-request-id", request_id.encode()))
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + headers
            await send(message)

        span = None
        if self.server.tracer is not None:
            from opentelemetry import propagate

            carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            span = self.server.tracer.start_span(
                f"{scope['method']} {path}", context=propagate.extract(carrier)
            )
            span.set_attribute("http.request.method", scope["method"])
            span.set_attribute("aidlc.request_id", request_id)
        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            m = self.server.metrics
            code = str(status)
            m.requests.labels(endpoint, scope["method"], code).inc()
            m.latency.labels(endpoint).observe(elapsed)
            if status >= 400:
                m.errors.labels(endpoint, code).inc()
            if span is not None:
                span.set_attribute("http.route", endpoint)
                span.set_attribute("http.response.status_code", status)
                span.end()
            access.info(
                "%s %s %d",
                scope["method"],
                endpoint,
                status,
                extra={"request_id": request_id, "ms": round(elapsed * 1000, 3)},
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _body(request: Request, limit: int) -> Any:
    """The request's JSON, read with a size cap that also holds for chunked uploads."""
    if request.headers.get("inference-header-content-length"):
        raise Unsupported(
            "the binary tensor extension is not supported; send JSON tensors",
            hint="with tritonclient: set_data_from_numpy(..., binary_data=False)",
        )
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind not in ("application/json", ""):
        raise Unsupported(f"the body must be application/json, not {kind[:60]}")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge(f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {str(exc)[:200]}") from None


_PREDICT_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["records"],
                "properties": {
                    "records": {
                        "type": "array",
                        "items": {"type": "object", "additionalProperties": True},
                        "description": "rows to predict: field → value, as the model's schema says",
                    },
                    "probabilities": {"type": "boolean", "default": False},
                },
            }
        }
    },
}
_FEEDBACK_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["model", "feedback"],
                "properties": {
                    "model": {"type": "string"},
                    "feedback": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["prediction_id", "label"],
                            "properties": {
                                "prediction_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                                "label": {"type": ["string", "number", "boolean"]},
                            },
                        },
                    },
                },
            }
        }
    },
}
_KPI_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["model", "kpis"],
                "properties": {
                    "model": {"type": "string"},
                    "kpis": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "value"],
                            "properties": {
                                "name": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_.-]*$"},
                                "value": {"type": "number"},
                                "at": {"type": "string", "format": "date-time"},
                            },
                        },
                    },
                },
            }
        }
    },
}
_INFER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["inputs"],
                "properties": {
                    "id": {"type": "string"},
                    "inputs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "shape", "datatype", "data"],
                            "properties": {
                                "name": {"type": "string"},
                                "shape": {"type": "array", "items": {"type": "integer"}},
                                "datatype": {"type": "string"},
                                "data": {"type": "array"},
                            },
                        },
                    },
                    "outputs": {"type": "array", "items": {"type": "object"}},
                    "parameters": {"type": "object"},
                },
            }
        }
    },
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    schema = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "hint": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["error"],
    }
    text = {400: "Malformed request", 401: "No or bad token", 403: "Role does not allow it",
            404: "No such model", 413: "Body too large", 415: "Not JSON",
            422: "Records do not match the model's schema", 429: "Rate limited",
            503: "Not ready"}  # fmt: skip
    return {
        c: {"description": text[c], "content": {"application/json": {"schema": schema}}}
        for c in codes
    }


_MODEL_ERRORS = _errors(400, 401, 403, 404, 413, 415, 422, 429)


def create_app(server: Server) -> FastAPI:
    """The FastAPI app around a `Server`; starting the app starts the server."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        await asyncio.to_thread(server.start)
        try:
            yield
        finally:
            await asyncio.to_thread(server.close)

    app = FastAPI(
        title="aidlc inference API",
        version="1",
        description="Authenticated, validated, rate-limited predictions from signed, approved "
        "model versions. Send `Authorization: Bearer <token>` of a principal with the inference "
        "role.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        default_response_class=JSON,
    )

    app.state.server = server

    @app.exception_handler(AidlcError)
    async def _aidlc_error(_: Request, exc: AidlcError) -> Response:
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def _routing_error(_: Request, exc: HTTPException) -> Response:
        # The router's own 404 and 405 answer in the shape of every other error.
        return JSON({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.error("unexpected error", exc_info=exc)
        return JSON({"error": "internal error; the request id names it in the server log"}, 500)

    @app.post(
        "/v1/models/{name}:predict",
        openapi_extra={"requestBody": _PREDICT_BODY},
        responses=_MODEL_ERRORS,
        tags=["predict"],
        summary="Predict records with the model's production version",
    )
    async def predict(name: str, request: Request) -> Response:
        principal = server.caller(request, "model.predict")
        body = await _body(request, server.config.max_body_bytes)
        if not isinstance(body, dict):
            raise InvalidInput("the body must be a JSON object with a 'records' array")
        unknown = set(body) - {"records", "probabilities"}
        if unknown:
            raise InvalidInput(f"unknown body field {sorted(unknown)[0][:60]!r}")
        want = body.get("probabilities", False)
        if not isinstance(want, bool):
            raise InvalidInput("'probabilities' must be true or false")
        served, result, ids, background = server.predict(
            name, body.get("records"), principal, probabilities=want
        )
        out = []
        for i, label in enumerate(result.predictions):
            row: dict[str, Any] = {"prediction_id": ids[i], "prediction": label}
            if want and result.probabilities is not None:
                row["probabilities"] = dict(
                    zip(map(str, served.classes or []), result.probabilities[i], strict=False)
                )
            row["ood"] = bool(result.ood[i])
            if result.ood[i]:
                row["ood_reasons"] = result.ood[i]
            out.append(row)
        return JSON(
            {"model": served.name, "version": served.version, "predictions": out},
            background=background,
        )

    @app.post(
        "/v1/feedback",
        openapi_extra={"requestBody": _FEEDBACK_BODY},
        responses=_errors(400, 401, 403, 404, 413, 415, 422, 429),
        status_code=202,
        tags=["predict"],
        summary="Attach ground-truth labels to earlier predictions",
    )
    async def feedback(request: Request) -> Response:
        principal = server.caller(request, "object.write:predictions")
        body = await _body(request, server.config.max_body_bytes)
        if not isinstance(body, dict) or set(body) - {"model", "feedback"}:
            raise InvalidInput("the body must be an object with 'model' and 'feedback'")
        name = body.get("model")
        if not isinstance(name, str):
            raise InvalidInput("'model' must be the name of a served model")
        server.slot(name)
        items = body.get("feedback")
        if not isinstance(items, list) or not items:
            raise InvalidInput("'feedback' must be a non-empty array")
        if len(items) > server.config.max_batch_rows:
            raise InvalidInput(f"at most {server.config.max_batch_rows} labels per request")
        at = now()
        rows, problems = [], []
        for i, item in enumerate(items):
            pid = item.get("prediction_id") if isinstance(item, dict) else None
            label = item.get("label") if isinstance(item, dict) else None
            if not isinstance(pid, str) or not _PREDICTION_ID.match(pid):
                problems.append(
                    {"row": i, "field": "prediction_id", "problem": "not a prediction id"}
                )
            elif not isinstance(label, str | int | float | bool) or (
                isinstance(label, str) and len(label) > 1000
            ):
                problems.append({"row": i, "field": "label", "problem": "must be a scalar"})
            else:
                rows.append(
                    {
                        "prediction_id": pid,
                        "at": at,
                        "model": name,
                        "label": orjson.dumps(label).decode(),
                        "principal": principal.name,
                        "request_id": current_request_id(),
                    }
                )
        if problems:
            raise InvalidRecords(f"{len(problems)} feedback items are malformed", problems[:20])
        if server.feedback is None:
            raise NotReady("the server is starting")
        server.feedback.add(rows)
        return JSON({"accepted": len(rows)}, status_code=202)

    @app.post(
        "/v1/kpis",
        openapi_extra={"requestBody": _KPI_BODY},
        responses=_errors(400, 401, 403, 404, 413, 415, 422, 429),
        status_code=202,
        tags=["predict"],
        summary="Record business KPIs beside a model's metrics",
    )
    async def kpis(request: Request) -> Response:
        principal = server.caller(request, "kpi.write")
        body = await _body(request, server.config.max_body_bytes)
        if not isinstance(body, dict) or set(body) != {"model", "kpis"}:
            raise InvalidInput("the body must be an object with 'model' and 'kpis'")
        name = body["model"]
        if not isinstance(name, str):
            raise InvalidInput("'model' must be the name of a served model")
        server.slot(name)
        count = await run_in_threadpool(push_kpis, server.ws, name, body["kpis"], principal)
        return JSON({"accepted": count}, status_code=202)

    # -- health and metrics ------------------------------------------------------------------

    @app.get("/healthz", tags=["health"], summary="The process is alive")
    async def healthz() -> Response:
        return JSON({"status": "ok"})

    @app.get("/readyz", tags=["health"], summary="Models loaded and dependencies reachable",
             responses=_errors(503))  # fmt: skip
    async def readyz() -> Response:
        problems = []
        if server.revoked is not None:
            problems.append("the server's credentials were revoked")
        elif not server.ready:
            problems.append("starting")
        if not server.slots:
            problems.append("no model is being served")
        if not server.limiter.check():
            problems.append("rate-limit storage unreachable")
        if problems:
            return JSON({"error": "not ready: " + "; ".join(problems)}, status_code=503)
        return JSON({"status": "ready", "models": sorted(server.slots)})

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics",
             response_class=PlainTextResponse, responses=_errors(401, 403, 429))  # fmt: skip
    async def metrics(request: Request) -> Response:
        server.caller(request, "model.read")
        body, kind = server.metrics.exposition()
        return Response(body, media_type=kind)

    # -- Open Inference Protocol (KServe V2) -------------------------------------------------

    @app.get("/v2", tags=["v2"], summary="Server metadata")
    async def v2_server() -> Response:
        from aidlc import __version__

        return JSON({"name": "aidlc", "version": __version__, "extensions": []})

    @app.get("/v2/health/live", tags=["v2"], summary="Server live")
    async def v2_live() -> Response:
        return JSON({"live": True})

    @app.get("/v2/health/ready", tags=["v2"], summary="Server ready", responses=_errors(503))
    async def v2_ready() -> Response:
        ready = server.ready and bool(server.slots)
        return JSON({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/v2/models/{name}", tags=["v2"], summary="Model metadata",
             responses=_errors(401, 403, 404, 429))  # fmt: skip
    async def v2_model(name: str, request: Request) -> Response:
        server.caller(request, "model.predict")
        return JSON(server.slot(name).production.describe())

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="Model ready",
             responses=_errors(401, 403, 404, 429))  # fmt: skip
    async def v2_model_ready(name: str, request: Request) -> Response:
        server.caller(request, "model.predict")
        server.slot(name)
        return JSON({"name": name, "ready": True})

    @app.post(
        "/v2/models/{name}/infer",
        openapi_extra={"requestBody": _INFER_BODY},
        responses=_MODEL_ERRORS,
        tags=["v2"],
        summary="Inference (Open Inference Protocol V2, JSON tensors)",
    )
    async def v2_infer(name: str, request: Request) -> Response:
        principal = server.caller(request, "model.predict")
        body = await _body(request, server.config.max_body_bytes)
        slot = server.slot(name)
        records = v2_records(slot.production, body)
        served, result, _, background = server.predict(name, records, principal)
        labels = result.predictions
        if served.task == "regression":
            datatype = "FP64"
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
            datatype = "INT64"
        else:
            datatype, labels = "BYTES", [str(v) for v in labels]
        out: dict[str, Any] = {
            "model_name": served.name,
            "model_version": str(served.version),
            "outputs": [
                {"name": "predict", "shape": [len(labels)], "datatype": datatype, "data": labels}
            ],
        }
        if isinstance(body.get("id"), str):
            out["id"] = body["id"][:200]
        return JSON(out, background=background)

    # -- API documentation, from local files ---------------------------------------------------

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        from fastapi.openapi.docs import get_swagger_ui_html

        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="aidlc inference API",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )

    from aidlc.console.app import mount as mount_console

    mount_console(app, server)
    _mount_docs(app)
    _security_scheme(app)
    app.add_middleware(Observe, server=server)
    return app


def _mount_docs(app: FastAPI) -> None:
    from starlette.staticfiles import StaticFiles

    try:
        import swagger_ui_bundle
    except ImportError:  # the page is optional; /openapi.json is always there
        return
    app.mount("/docs/static", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), "docs")


def _security_scheme(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            open_paths = {"/healthz", "/readyz", "/v2", "/v2/health/live", "/v2/health/ready"}
            for path, item in schema["paths"].items():
                if path in open_paths:
                    continue
                for operation in item.values():
                    operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_V2_NUMERIC = {"FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32",
               "UINT16", "UINT8"}  # fmt: skip


def v2_records(served: ServedModel, body: Any) -> list[dict[str, Any]]:
    """Records from V2 JSON tensors: one tensor per input feature, shape [N] or [N, 1], or one
    tensor of shape [N, F] holding the features in the schema's order."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list) or not body["inputs"]:
        raise InvalidInput("the body must be an object with a non-empty 'inputs' array")
    tensors = body["inputs"]
    features = [c["name"] for c in served.schema]
    columns: dict[str, list[Any]] = {}
    for t in tensors:
        if not isinstance(t, dict):
            raise InvalidInput("every input must be an object")
        name, shape, dtype, data = t.get("name"), t.get("shape"), t.get("datatype"), t.get("data")
        if not isinstance(name, str) or not isinstance(data, list):
            raise InvalidInput("every input needs a 'name' and a 'data' array")
        if (
            not isinstance(shape, list)
            or not shape
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise InvalidInput(f"input {name[:60]!r}: 'shape' must be a list of sizes")
        if not isinstance(dtype, str) or (
            dtype not in _V2_NUMERIC and dtype not in ("BOOL", "BYTES")
        ):
            raise InvalidInput(f"input {name[:60]!r}: unknown datatype {str(dtype)[:20]!r}")
        size = math.prod(shape)
        flat = _flatten(data, limit=size + 1)
        if len(flat) != size:
            raise InvalidInput(f"input {name[:60]!r}: {len(flat)} values for shape {shape}")
        if (
            len(tensors) == 1
            and len(shape) == 2
            and shape[1] == len(features)
            and len(features) > 1
        ):
            n = shape[0]
            return [dict(zip(features, flat[i * shape[1] : (i + 1) * shape[1]], strict=True))
                    for i in range(n)]  # fmt: skip
        if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
            raise InvalidInput(f"input {name[:60]!r}: a feature tensor has shape [N] or [N, 1]")
        columns[name] = flat
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InvalidInput("the input tensors have different lengths")
    n = lengths.pop()
    return [{name: values[i] for name, values in columns.items()} for i in range(n)]


def _flatten(data: list[Any], *, limit: int) -> list[Any]:
    out: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                if len(stack) > 8:
                    raise InvalidInput("tensor data is nested too deeply")
                stack.append(iter(item))
                break
            out.append(item)
            if len(out) > limit:
                return out
        else:
            stack.pop()
    return out
