"""What the server tells operators: Prometheus metrics, JSON logs with request ids, and traces.

Metrics live in a registry of the app's own (so two apps in one process do not mix), or, with
several workers, in prometheus-client's multiprocess directory so `/metrics` of any worker sums
all of them. Route templates, never raw paths, label the metrics, so a scanner's random URLs
cannot grow them without bound. Traces are made only when `serve.tracing.exporter` names one.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

from aidlc.core.config import TracingConfig

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class Metrics:
    """The server's Prometheus metrics."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        self.registry = CollectorRegistry(auto_describe=True)
        reg = None if self.multiprocess else self.registry
        self.requests = Counter(
            "aidlc_http_requests",
            "HTTP requests by route template, method and status code",
            ["endpoint", "method", "code"],
            registry=reg,
        )
        self.errors = Counter(
            "aidlc_http_errors",
            "HTTP responses with a 4xx or 5xx status, by route template and code",
            ["endpoint", "code"],
            registry=reg,
        )
        self.latency = Histogram(
            "aidlc_http_request_duration_seconds",
            "Request latency by route template",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=reg,
        )
        self.predictions = Counter(
            "aidlc_predictions",
            "Predicted rows by model, version, route and class (classifiers)",
            ["model", "version", "route", "label"],
            registry=reg,
        )
        self.values = Histogram(
            "aidlc_prediction_value",
            "Predicted values (regressors)",
            ["model", "version"],
            buckets=(-1e6, -1e3, -100, -10, -1, 0, 1, 10, 100, 1e3, 1e6),
            registry=reg,
        )
        self.rows = Counter(
            "aidlc_predicted_rows", "Rows predicted, by model", ["model"], registry=reg
        )
        self.ood = Counter(
            "aidlc_ood_rows",
            "Rows flagged out of distribution, by model (OOD rate = this / predicted rows)",
            ["model"],
            registry=reg,
        )
        self.rate_limited = Counter("aidlc_rate_limited", "Requests refused with 429", registry=reg)
        self.log_dropped = Counter(
            "aidlc_prediction_log_dropped",
            "Prediction log rows dropped because the writer queue was full",
            registry=reg,
        )
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "liveall"} if self.multiprocess else {}
        self.model_info = Gauge(
            "aidlc_model_info",
            "The model versions being served (1) by role: production, canary or shadow",
            ["model", "version", "digest", "role"],
            registry=reg,
            **gauge_mode,
        )

    def served(self, name: str, roles: dict[str, tuple[int, str] | None]) -> None:
        """Show which versions now serve `name`; older label sets are removed."""
        for key in list(self.model_info._metrics):  # label sets of this model only
            if key[0] == name:
                self.model_info.remove(*key)
        for role, what in roles.items():
            if what is not None:
                version, digest = what
                self.model_info.labels(name, str(version), digest[:16], role).set(1)

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the `extra` fields of a record become keys."""

    _SKIP = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._SKIP and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return orjson.dumps(doc, default=str).decode()


def json_logging(level: int = logging.INFO, stream: Any = None) -> None:
    """Send aidlc's logs (and uvicorn's errors) to `stream` as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("aidlc", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


def tracer(config: TracingConfig, exporter: Any = None) -> tuple[Any, Any] | None:
    """An OpenTelemetry tracer when an exporter is configured (or given), else None."""
    if exporter is None and config.exporter == "none":
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": config.service_name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif config.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint)))
    else:
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    return provider.get_tracer("aidlc.serve"), provider
