"""Traces, JSON logs and metrics: what operators see of the server."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest


@pytest.fixture
def traced_client(served):
    """A started app whose spans go to an in-memory exporter."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from starlette.testclient import TestClient

    from aidlc.serve.app import Server, create_app

    exporter = InMemorySpanExporter()
    ws = served.open("service")
    server = Server(ws, ws.config.serve, span_exporter=exporter)
    with TestClient(create_app(server)) as client:
        yield client, exporter
    ws.close()


def test_each_request_is_a_span_that_continues_the_callers_trace(traced_client, served, records):
    client, exporter = traced_client
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = f"00-{trace_id}-00f067aa0ba902b7-01"
    r = client.post(
        "/v1/models/bc:predict",
        headers={**served.headers(), "traceparent": parent, "x-request-id": "req-42"},
        json={"records": records[:2]},
    )
    assert r.status_code == 200
    spans = [s for s in exporter.get_finished_spans() if "predict" in s.name]
    assert len(spans) == 1
    span = spans[0]
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert span.attributes["http.route"] == "/v1/models/{name}:predict"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["aidlc.request_id"] == "req-42"
    assert span.resource.attributes["service.name"] == "aidlc"


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, int]]] = []

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = self.rfile.read(length)
        self.received.append((self.path, self.headers.get("content-type", ""), len(body)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_otlp_exporter_sends_spans_to_a_collector(served, records):
    """With `tracing.exporter: otlp` spans reach a real HTTP endpoint as OTLP protobuf."""
    from starlette.testclient import TestClient

    from aidlc.core.config import ServeConfig
    from aidlc.serve.app import Server, create_app

    _Collector.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{httpd.server_address[1]}/v1/traces"
        ws = served.open("service")
        config = ServeConfig.model_validate(
            {**ws.config.serve.model_dump(), "tracing": {"exporter": "otlp", "endpoint": endpoint}}
        )
        with TestClient(create_app(Server(ws, config))) as client:
            r = client.post(
                "/v1/models/bc:predict", headers=served.headers(), json={"records": records[:1]}
            )
            assert r.status_code == 200
        ws.close()  # closing the app shut the provider down, which flushes the batch
        deadline = time.monotonic() + 10
        while not _Collector.received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _Collector.received, "no OTLP export arrived"
        path, kind, size = _Collector.received[0]
        assert path == "/v1/traces" and kind == "application/x-protobuf" and size > 0
    finally:
        httpd.shutdown()


def test_json_logs_carry_the_request_id(served, records):
    from starlette.testclient import TestClient

    from aidlc.serve.app import Server, create_app
    from aidlc.serve.observe import json_logging

    stream = io.StringIO()
    json_logging(stream=stream)
    try:
        ws = served.open("service")
        with TestClient(create_app(Server(ws, ws.config.serve))) as client:
            client.post(
                "/v1/models/bc:predict",
                headers={**served.headers(), "x-request-id": "abc-123"},
                json={"records": records[:1]},
            )
            client.post("/v1/models/bc:predict", json={"records": records[:1]})
        ws.close()
    finally:
        for name in ("aidlc", "uvicorn.error"):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "aidlc.access"]
    assert {"ts", "level", "msg", "request_id", "ms"} <= set(access[0])
    assert access[0]["request_id"] == "abc-123"
    assert access[0]["msg"] == "POST /v1/models/{name}:predict 200"
    assert access[1]["msg"].endswith(" 401") and len(access[1]["request_id"]) == 32
    assert served.tokens["inference"] not in stream.getvalue()
    assert any(line["msg"] == "serving bc@1" for line in lines)
