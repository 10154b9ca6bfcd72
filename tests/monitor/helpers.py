"""Logging real predictions for monitor tests, without HTTP: the server's own predict path."""

from __future__ import annotations

from typing import Any

from tests.serve.conftest import Served


def serve_rows(
    served: Served, rows: list[dict[str, Any]], *, batch: int = 100, scores: bool = False
) -> list[str]:
    """Predict `rows` with bc's production version through a Server (logged), then drain the
    log; returns the prediction ids."""
    from aidlc.core.config import ServeConfig
    from aidlc.serve.app import Server

    ws = served.open("service")
    settings = ws.config.serve.model_dump()
    settings["rate_limit"] = "100000/second"
    settings["prediction_log"]["scores"] = scores
    config = ServeConfig.model_validate(settings)
    server = Server(ws, config)
    server.start()
    principal = ws.principal
    ids: list[str] = []
    try:
        for i in range(0, len(rows), batch):
            _, _, got, _ = server.predict("bc", rows[i : i + batch], principal)
            ids.extend(got)
    finally:
        server.close()
        ws.close()
    return ids


def add_principal(served: Served, name: str, roles: list[str]) -> None:
    from aidlc.core import principals

    with served.open("admin") as admin:
        _, served.tokens[name] = principals.add(admin, name, roles)


def send_feedback(served: Served, labels: dict[str, Any]) -> None:
    """Log labels for prediction ids, as `/v1/feedback` does."""
    import orjson

    from aidlc.serve.predlog import now, write_batch

    at = now()
    rows = [
        {
            "prediction_id": pid,
            "at": at,
            "model": "bc",
            "label": orjson.dumps(label).decode(),
            "principal": "inference",
            "request_id": "test",
        }
        for pid, label in labels.items()
    ]
    with served.open("inference") as ws:
        write_batch(ws, "feedback", "bc", rows)


def shifted(rows: list[dict[str, Any]], features: dict[str, float]) -> list[dict[str, Any]]:
    """Rows with some features multiplied (a drifted population)."""
    return [{k: (v * features[k] if k in features else v) for k, v in r.items()} for r in rows]
