"""The inference API in process: predictions, auth, validation, limits, OOD flags, headers,
metrics, feedback and prediction logs, the V2 protocol, hot swaps, and fuzzing of the OpenAPI."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

PREDICT = "/v1/models/bc:predict"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
CLASSES = {"benign", "malignant"}
PREDICT_OPERATION = "POST /v1/models/{name}:predict"


def _metric(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples called `name` whose labels include `labels`; None when absent."""
    from prometheus_client.parser import text_string_to_metric_families

    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(values) if values else None


def _metrics(client: Any, served: Any) -> str:
    response = client.get("/metrics", headers=served.headers("monitor"))
    assert response.status_code == 200, response.text
    return str(response.text)


def _until(condition: Any, seconds: float = 10.0) -> Any:
    """Poll `condition` until it returns something truthy or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def _training(served: Any, feature: str) -> dict[str, Any]:
    from aidlc.registry import versions

    with served.open("inference") as ws:
        baseline = json.loads(versions.read_document(ws, "bc@1", "baseline.json"))
    return next(c for c in baseline["features"]["columns"] if c["name"] == feature)


# -- predictions ---------------------------------------------------------------------------------


def test_predict_answers_each_record_as_the_registered_model_does(client_for, served, records):
    import polars as pl

    from aidlc.registry import versions

    client = client_for()
    rows = records[:60]
    response = client.post(
        PREDICT, headers=served.headers(), json={"records": rows, "probabilities": True}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("bc", 1)
    answers = body["predictions"]
    assert len(answers) == len(rows)
    assert all(HEX32.match(a["prediction_id"]) for a in answers)
    assert len({a["prediction_id"] for a in answers}) == len(rows)
    assert {a["prediction"] for a in answers} == CLASSES
    for a in answers:
        assert set(a["probabilities"]) == CLASSES
        assert sum(a["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert a["prediction"] == max(a["probabilities"], key=a["probabilities"].get)
        assert isinstance(a["ood"], bool)
    with served.open("inference") as ws:
        expected = versions.load_model(ws, "bc@1").predict(pl.DataFrame(rows))
    assert [a["prediction"] for a in answers] == expected

    plain = client.post(PREDICT, headers=served.headers(), json={"records": rows[:2]})
    assert plain.status_code == 200
    assert all("probabilities" not in a for a in plain.json()["predictions"])
    assert [a["prediction"] for a in plain.json()["predictions"]] == expected[:2]


# -- authentication and roles --------------------------------------------------------------------


def test_requests_without_a_good_token_get_401_with_a_bearer_challenge(client_for, served, records):
    client = client_for()
    body = {"records": records[:1]}
    unknown = "aidlc_" + "A" * 43
    for headers in (
        {},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": f"Bearer {unknown}"},
    ):
        response = client.post(PREDICT, headers=headers, json=body)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]
        assert unknown not in response.text


def test_a_revoked_token_is_refused(client_for, served, records):
    from aidlc.core import principals

    client = client_for(token_cache_seconds=0)
    body = {"records": records[:1]}
    assert client.post(PREDICT, headers=served.headers(), json=body).status_code == 200
    with served.open("admin") as ws:
        (token,) = principals.list_tokens(ws, "inference")
        principals.revoke_token(ws, token.id)
    response = client.post(PREDICT, headers=served.headers(), json=body)
    assert response.status_code == 401
    assert "www-authenticate" in response.headers


def test_roles_without_model_predict_get_403_and_are_audited_as_denied(client_for, served, records):
    client = client_for()
    for who in ("trainer", "monitor"):
        response = client.post(PREDICT, headers=served.headers(who), json={"records": records[:1]})
        assert response.status_code == 403, response.text
        assert "model.predict" in response.json()["error"]
    with served.open("auditor") as ws:
        denied = [e for e in ws.audit.events(action="model.predict") if e.outcome == "denied"]
    assert {e.actor for e in denied} == {"trainer", "monitor"}
    assert all(e.resource == PREDICT for e in denied)


# -- validation ----------------------------------------------------------------------------------


def test_records_breaking_the_schema_get_422_naming_row_and_field(client_for, served, records):
    client = client_for()
    good = records[0]
    without = {k: v for k, v in good.items() if k != "mean_radius"}
    cases = [
        ([{**good, "colour": "red"}], 0, "colour", "is not an input of the model"),
        ([good, without], 1, "mean_radius", "is required"),
        ([good, good, {**good, "mean_radius": None}], 2, "mean_radius", "is required"),
        ([{**good, "mean_area": "big"}], 0, "mean_area", "must be a number (float), not a string"),
        ([{**good, "mean_area": True}], 0, "mean_area", "must be a number (float), not a boolean"),
        ([{**good, "mean_radius": -1.0}], 0, "mean_radius", "is below the minimum 0.0"),
        ([{**good, "mean_radius": 1e9}], 0, "mean_radius", "is above the maximum"),
        ([good, "a row"], 1, None, "must be an object"),
    ]
    for rows, row, field, problem in cases:
        response = client.post(PREDICT, headers=served.headers(), json={"records": rows})
        assert response.status_code == 422, (rows, response.text)
        problems = response.json()["problems"]
        assert problems[0]["row"] == row and problems[0]["field"] == field, problems
        assert problems[0]["problem"].startswith(problem), problems
        assert f"record {row}" in response.json()["error"]


def test_malformed_bodies_get_422_saying_what_is_wrong(client_for, served, records):
    client = client_for()
    cases: list[tuple[Any, str]] = [
        ({"records": {"mean_radius": 1.0}}, "records must be an array"),
        ({"records": []}, "records is empty"),
        ({}, "records must be an array"),
        ([records[0]], "must be a JSON object"),
        ("records", "must be a JSON object"),
        ({"records": records[:1], "extra": 1}, "unknown body field 'extra'"),
        ({"records": records[:1], "probabilities": "yes"}, "'probabilities' must be true or false"),
    ]
    for body, message in cases:
        response = client.post(PREDICT, headers=served.headers(), json=body)
        assert response.status_code == 422, (body, response.text)
        assert message in response.json()["error"]
    broken = client.post(
        PREDICT,
        headers={**served.headers(), "Content-Type": "application/json"},
        content=b'{"records": [',
    )
    assert broken.status_code == 422
    assert "not valid JSON" in broken.json()["error"]


def test_batch_size_body_size_and_content_type_are_limited(client_for, served, records):
    client = client_for(max_batch_rows=5, max_body_bytes=2048)
    headers = served.headers()
    many = client.post(PREDICT, headers=headers, json={"records": [{}] * 6})
    assert many.status_code == 422
    assert many.json()["problems"] == [
        {"row": None, "field": None, "problem": "more than 5 records"}
    ]
    assert client.post(PREDICT, headers=headers, json={"records": records[:1]}).status_code == 200

    big = json.dumps({"records": records[:5]}).encode()
    assert len(big) > 2048
    declared = client.post(
        PREDICT, headers={**headers, "Content-Type": "application/json"}, content=big
    )
    assert declared.status_code == 413
    assert "2048 bytes" in declared.json()["error"]
    # A chunked upload declares no length; the cap holds while the body streams in.
    chunked = client.post(
        PREDICT,
        headers={**headers, "Content-Type": "application/json"},
        content=iter([big[i : i + 500] for i in range(0, len(big), 500)]),
    )
    assert chunked.status_code == 413

    text = client.post(
        PREDICT, headers={**headers, "Content-Type": "text/plain"}, content=b'{"records": []}'
    )
    assert text.status_code == 415
    assert "text/plain" in text.json()["error"]


# -- rate limits ---------------------------------------------------------------------------------


def test_the_rate_limit_answers_429_per_token_and_is_counted(client_for, served, records):
    client = client_for(rate_limit="5/minute")
    body = {"records": records[:1]}
    codes = [
        client.post(PREDICT, headers=served.headers(), json=body).status_code for _ in range(5)
    ]
    assert codes == [200] * 5
    limited = client.post(PREDICT, headers=served.headers(), json=body)
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-limit"] == "5"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert "5/minute" in limited.json()["error"]
    other = client.post(PREDICT, headers=served.headers("admin2"), json=body)
    assert other.status_code == 200
    assert _metric(_metrics(client, served), "aidlc_rate_limited_total") == 1.0


# -- out of distribution -------------------------------------------------------------------------


def test_rows_beyond_training_are_flagged_counted_and_can_be_rejected(client_for, served, records):
    trained = _training(served, "mean_radius")
    odd = {**records[0], "mean_radius": round(trained["max"] * 1.5, 3)}
    rows = [records[0], odd, records[1]]

    flagging = client_for()
    response = flagging.post(PREDICT, headers=served.headers(), json={"records": rows})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["ood"] for a in answers] == [False, True, False]
    assert any("above the training maximum" in r for r in answers[1]["ood_reasons"])
    assert "ood_reasons" not in answers[0]
    assert _metric(_metrics(flagging, served), "aidlc_ood_rows_total", model="bc") == 1.0

    # The anomaly score: with a tight z bound, ordinary rows are flagged too.
    strict = client_for(ood_z=0.5)
    response = strict.post(PREDICT, headers=served.headers(), json={"records": records[:5]})
    assert response.status_code == 200
    assert any(
        "standard deviations from the mean" in reason
        for a in response.json()["predictions"]
        for reason in a.get("ood_reasons", [])
    )

    rejecting = client_for(ood_action="reject")
    response = rejecting.post(PREDICT, headers=served.headers(), json={"records": rows})
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [p["row"] for p in problems] == [1]
    assert "mean_radius: above the training maximum" in problems[0]["problem"]
    assert "1 of 3 records" in response.json()["error"]


# -- headers -------------------------------------------------------------------------------------


def _assert_secure(response: Any) -> None:
    h = response.headers
    assert h["x-content-type-options"] == "nosniff"
    assert h["x-frame-options"] == "DENY"
    assert h["content-security-policy"].startswith("default-src 'none'")
    assert h["cache-control"] == "no-store"
    assert h["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in h  # plain HTTP here; HSTS only over TLS


def test_security_headers_and_request_ids_are_on_every_answer(client_for, served, records):
    client = client_for()
    ok = client.post(
        PREDICT,
        headers={**served.headers(), "X-Request-ID": "req-1.a_B"},
        json={"records": records[:1]},
    )
    assert ok.status_code == 200
    _assert_secure(ok)
    assert ok.headers["x-request-id"] == "req-1.a_B"

    missing = client.get("/no/such/page", headers={"X-Request-ID": "bad id; drop table"})
    assert missing.status_code == 404
    _assert_secure(missing)
    assert HEX32.match(missing.headers["x-request-id"])
    assert missing.json() == {"error": "Not Found"}

    wrong_method = client.get(PREDICT, headers=served.headers())
    assert wrong_method.status_code == 405
    _assert_secure(wrong_method)
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json() == {"error": "Method Not Allowed"}

    refused = client.post(PREDICT, json={"records": records[:1]})
    assert refused.status_code == 401
    _assert_secure(refused)
    assert HEX32.match(refused.headers["x-request-id"])
    assert refused.headers["x-request-id"] != missing.headers["x-request-id"]


# -- metrics -------------------------------------------------------------------------------------


def test_metrics_need_a_token_and_label_by_route_template(client_for, served, records):
    client = client_for()
    assert client.get("/metrics").status_code == 401
    headers = served.headers()
    assert client.post(PREDICT, headers=headers, json={"records": records[:7]}).status_code == 200
    unknown = client.post("/v1/models/xyz:predict", headers=headers, json={"records": records[:1]})
    assert unknown.status_code == 404
    assert client.get("/scanner/probe-8f3a").status_code == 404

    text = _metrics(client, served)
    template = "/v1/models/{name}:predict"
    count = _metric
    assert count(text, "aidlc_http_requests_total", endpoint=template, code="200") == 1.0
    assert count(text, "aidlc_http_requests_total", endpoint=template, code="404") == 1.0
    assert count(text, "aidlc_http_requests_total", endpoint="unmatched", code="404") == 1.0
    assert count(text, "aidlc_http_errors_total", endpoint="unmatched", code="404") == 1.0
    assert count(text, "aidlc_http_requests_total", endpoint="/metrics", code="401") == 1.0
    assert "xyz" not in text and "scanner" not in text
    assert count(text, "aidlc_http_request_duration_seconds_count", endpoint=template) == 2.0
    info = count(text, "aidlc_model_info", model="bc", version="1", role="production")
    assert info == 1.0
    by_label = {
        label: count(text, "aidlc_predictions_total", model="bc", version="1", label=label)
        for label in CLASSES
    }
    assert sum(v or 0 for v in by_label.values()) == 7.0
    assert count(text, "aidlc_predicted_rows_total", model="bc") == 7.0


# -- feedback and prediction logs ----------------------------------------------------------------


def test_feedback_and_every_prediction_are_logged_by_shutdown(client_for, served, records):
    from aidlc.serve.predlog import read_batches

    client = client_for()
    headers = served.headers()
    sent: dict[str, dict[str, Any]] = {}
    for start in (0, 4, 9):
        response = client.post(
            PREDICT, headers=headers, json={"records": records[start : start + 4]}
        )
        assert response.status_code == 200
        for i, answer in enumerate(response.json()["predictions"]):
            sent[answer["prediction_id"]] = {**answer, "record": records[start + i]}
    labels = {pid: ("benign" if n % 2 else "malignant") for n, pid in enumerate(sent)}
    feedback = [{"prediction_id": pid, "label": label} for pid, label in labels.items()]

    accepted = client.post(
        "/v1/feedback", headers=headers, json={"model": "bc", "feedback": feedback}
    )
    assert accepted.status_code == 202
    assert accepted.json() == {"accepted": 12}

    bad = client.post(
        "/v1/feedback",
        headers=headers,
        json={"model": "bc", "feedback": [feedback[0], {"prediction_id": "XYZ", "label": "b"}]},
    )
    assert bad.status_code == 422
    assert bad.json()["problems"] == [
        {"row": 1, "field": "prediction_id", "problem": "not a prediction id"}
    ]
    nested = client.post(
        "/v1/feedback",
        headers=headers,
        json={"model": "bc", "feedback": [{"prediction_id": "0" * 32, "label": {"a": 1}}]},
    )
    assert nested.status_code == 422
    assert nested.json()["problems"][0]["field"] == "label"
    unknown = client.post(
        "/v1/feedback", headers=headers, json={"model": "nope", "feedback": feedback[:1]}
    )
    assert unknown.status_code == 404

    client.__exit__(None, None, None)  # the lifespan's shutdown flushes both logs
    with served.open("monitor") as ws:
        logged_feedback = read_batches(ws, "feedback")
        logged = read_batches(ws, "predictions", model="bc")
    assert {r["prediction_id"]: json.loads(r["label"]) for r in logged_feedback} == labels
    assert {r["principal"] for r in logged_feedback} == {"inference"}
    assert len(logged) == len(sent)
    by_id = {r["prediction_id"]: r for r in logged}
    assert set(by_id) == set(sent)
    for pid, answer in sent.items():
        row = by_id[pid]
        assert (row["model"], row["version"], row["route"]) == ("bc", 1, "production")
        assert json.loads(row["inputs"]) == answer["record"]
        assert json.loads(row["output"]) == answer["prediction"]
        assert row["ood"] == answer["ood"]
        assert row["latency_ms"] > 0


# -- health, V2 protocol, docs -------------------------------------------------------------------


def test_health_and_v2_metadata_endpoints(client_for, served, records):
    client = client_for()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "models": ["bc"]}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2").json()["name"] == "aidlc"
    headers = served.headers()
    assert client.get("/v2/models/bc").status_code == 401
    meta = client.get("/v2/models/bc", headers=headers).json()
    assert meta["name"] == "bc" and meta["versions"] == ["1"]
    assert [i["name"] for i in meta["inputs"]] == list(records[0])
    assert len(meta["inputs"]) == 30
    assert {i["datatype"] for i in meta["inputs"]} == {"FP64"}
    assert client.get("/v2/models/bc/ready", headers=headers).json() == {
        "name": "bc",
        "ready": True,
    }
    assert client.get("/v2/models/nope", headers=headers).status_code == 404
    assert client.get("/v2/models/nope/ready", headers=headers).status_code == 404


def test_v2_infer_answers_like_v1_for_both_tensor_layouts(client_for, served, records):
    client = client_for()
    headers = served.headers()
    rows = records[:20]
    features = list(rows[0])
    v1 = client.post(PREDICT, headers=headers, json={"records": rows}).json()
    labels = [a["prediction"] for a in v1["predictions"]]

    per_feature = {
        "id": "req-7",
        "inputs": [
            {"name": f, "shape": [len(rows)], "datatype": "FP64", "data": [r[f] for r in rows]}
            for f in features
        ],
    }
    response = client.post("/v2/models/bc/infer", headers=headers, json=per_feature)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_name"] == "bc" and body["model_version"] == "1" and body["id"] == "req-7"
    (output,) = body["outputs"]
    assert output["datatype"] == "BYTES" and output["shape"] == [20]
    assert output["data"] == labels

    matrix = {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), len(features)],
                "datatype": "FP64",
                "data": [[r[f] for f in features] for r in rows],
            }
        ]
    }
    response = client.post("/v2/models/bc/infer", headers=headers, json=matrix)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == labels

    binary = client.post(
        "/v2/models/bc/infer",
        headers={**headers, "Inference-Header-Content-Length": "120"},
        json=matrix,
    )
    assert binary.status_code == 415
    assert "binary" in binary.json()["error"]
    short = {"inputs": [{**matrix["inputs"][0], "shape": [len(rows) + 1, len(features)]}]}
    response = client.post("/v2/models/bc/infer", headers=headers, json=short)
    assert response.status_code == 422
    assert "values for shape" in response.json()["error"]


def test_docs_are_served_from_local_files(client_for):
    client = client_for()
    page = client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/docs/static/swagger-ui-bundle.js" in page.text
    assert "/openapi.json" in page.text
    assert not re.search(r"""(src|href)=["']?https?://""", page.text)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    script = client.get("/docs/static/swagger-ui-bundle.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000
    assert "javascript" in script.headers["content-type"]
    spec = client.get("/openapi.json").json()
    assert "/v1/models/{name}:predict" in spec["paths"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# -- rollouts: hot swap and a failed verification ------------------------------------------------


def _version(client: Any, served: Any, records: list[dict[str, Any]]) -> int:
    response = client.post(PREDICT, headers=served.headers(), json={"records": records[:2]})
    assert response.status_code == 200, response.text
    return int(response.json()["version"])


def test_moving_production_hot_swaps_the_served_version(client_for, served, records):
    from aidlc.registry import approval

    client = client_for(poll_seconds=0.2)
    assert _version(client, served, records) == 1
    with served.open("approver") as ws:
        approval.set_alias(ws, "bc@2", "production", reason="promote the good candidate")
    assert _until(lambda: _version(client, served, records) == 2)
    text = _metrics(client, served)
    assert _metric(text, "aidlc_model_info", model="bc", version="2", role="production") == 1.0
    assert _metric(text, "aidlc_model_info", model="bc", version="1") is None


def test_a_version_failing_verification_is_not_swapped_in_and_is_alerted(
    client_for, served, records
):
    from sqlalchemy import select, update

    from aidlc.core.alerts import list_alerts
    from aidlc.core.meta import ModelAliasRecord, ModelVersionRecord

    client = client_for(poll_seconds=0.2)
    assert _version(client, served, records) == 1
    # Someone with write access to the database rewrites bc@2's signed statement, then points
    # production at it without going through approval.
    with served.open("admin") as ws, ws.db.transaction() as session:
        rec = session.execute(
            select(ModelVersionRecord).where(ModelVersionRecord.version == 2)
        ).scalar_one()
        statement = json.loads(rec.statement)
        first = sorted(statement["files"])[0]
        statement["files"][first] = "0" * 64
        rec.statement = json.dumps(statement, sort_keys=True)
        session.execute(
            update(ModelAliasRecord).where(ModelAliasRecord.alias == "production").values(version=2)
        )

    def refused() -> list[Any]:
        with served.open("auditor") as ws:
            return [
                e
                for e in ws.audit.events(action="model.load")
                if e.outcome == "error" and e.resource == "model:bc@2"
            ]

    events = _until(refused)
    assert events, "the server never tried to load the tampered version"
    assert events[0].actor == "service"
    assert _version(client, served, records) == 1
    assert client.get("/readyz").status_code == 200
    with served.open("auditor") as ws:
        alerts = [a for a in list_alerts(ws) if a.source == "registry" and "bc@2" in a.title]
    assert alerts and alerts[0].severity == "CRITICAL"
    text = _metrics(client, served)
    assert _metric(text, "aidlc_model_info", model="bc", version="1", role="production") == 1.0


# -- fuzzing -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_schemathesis_finds_no_server_error_or_schema_violation(client_for, served):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation.modes import GenerationMode
    from schemathesis.python import asgi
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    client = client_for(rate_limit="100000/minute")
    schema = schemathesis.openapi.from_dict(client.get("/openapi.json").json())
    # A client that is not entered: the TestClient already runs the app's lifespan.
    session = asgi.get_client(client.app)
    headers = served.headers()
    checks = [
        not_a_server_error,
        response_schema_conformance,
        status_code_conformance,
        content_type_conformance,
    ]
    seen: dict[str, set[int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 12
    runs: list[tuple[Any, GenerationMode, dict[str, str] | None]] = []
    for operation in operations:
        named = "{name}" in operation.path
        runs.append((operation, GenerationMode.POSITIVE, {"name": "bc"} if named else None))
        if named:  # any model name, served or not
            runs.append((operation, GenerationMode.POSITIVE, None))
        if operation.body:  # else nothing in the request can break the schema
            runs.append((operation, GenerationMode.NEGATIVE, {"name": "bc"} if named else None))
    for operation, mode, path in runs:
        strategy = operation.as_strategy(
            generation_mode=mode, path_parameters=path, headers=headers
        )

        @settings(
            max_examples=30,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            response = case.call(session=session, base_url="http://testserver")
            case.validate_response(response, checks=checks)
            seen.setdefault(operation.label, set()).add(response.status_code)

        run()
    assert all(code < 500 for codes in seen.values() for code in codes)
    # The fuzzer reached the handlers, for the served model and for unknown ones.
    assert {404, 422} <= seen[PREDICT_OPERATION]
    assert {404, 422} <= seen["POST /v2/models/{name}/infer"]
    assert {200, 404} <= seen["GET /v2/models/{name}"]
    assert seen["GET /metrics"] == {200}


def _json_values() -> Any:
    from hypothesis import strategies as st

    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=30)
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=6)
            | st.dictionaries(st.text(max_size=20), children, max_size=6)
        ),
        max_leaves=40,
    )


def test_any_json_body_gets_a_client_error_never_a_server_error(client_for, served, records):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    client = client_for(rate_limit="100000/minute")
    headers = {**served.headers(), "Content-Type": "application/json"}
    features = list(records[0])
    values = _json_values()
    record = st.dictionaries(
        st.sampled_from([*features, "patient_id", ""]), values | st.floats(0, 50), max_size=35
    ) | st.builds(
        lambda r, v: {**r, **v},
        st.sampled_from(records[:20]),
        st.dictionaries(st.sampled_from(features), values, max_size=3),
    )
    bodies = (
        values
        | st.fixed_dictionaries({"records": st.lists(record, max_size=4)})
        | st.fixed_dictionaries(
            {"records": values}, optional={"probabilities": values, "other": values}
        )
    )
    statuses: set[int] = set()

    @settings(
        max_examples=120,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(body=bodies)
    def run(body: Any) -> None:
        response = client.post(PREDICT, headers=headers, content=json.dumps(body).encode())
        assert response.status_code in (200, 400, 413, 415, 422), (body, response.text)
        if response.status_code != 200:
            assert isinstance(response.json()["error"], str)
        statuses.add(response.status_code)

    run()
    assert {200, 422} <= statuses


def test_a_server_whose_own_token_is_revoked_stops_serving(
    served: Any, client_for: Any, records: list[dict[str, Any]]
) -> None:
    """The poller rechecks the server's credentials: after an admin revokes the service token,
    every request gets 503 and /readyz fails, and the recheck is audited."""
    import time

    from aidlc.core import principals

    client = client_for(poll_seconds=0.1)
    auth = served.headers("inference")
    assert client.post(PREDICT, json={"records": records[:1]}, headers=auth).status_code == 200
    with served.open("admin") as admin:
        for token in principals.list_tokens(admin, "service"):
            principals.revoke_token(admin, token.id)
    deadline = time.monotonic() + 10
    while client.server.revoked is None and time.monotonic() < deadline:
        time.sleep(0.05)
    refused = client.post(PREDICT, json={"records": records[:1]}, headers=auth)
    assert refused.status_code == 503
    assert "credentials stopped holding" in refused.json()["error"]
    assert client.get("/readyz").status_code == 503
    with served.open("auditor") as auditor:
        events = auditor.audit.events(action="auth.recheck")
    assert [(e.actor, e.outcome) for e in events] == [("service", "denied")]
