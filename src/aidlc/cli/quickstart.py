"""`aidlc quickstart`: the whole lifecycle, as far as it is built, in a throwaway workspace."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer

from aidlc.cli.context import console

DEMO_PRINCIPALS = {
    "steward": ["data-steward"],
    "lead": ["trainer", "approver"],
    "approver": ["approver"],
    "auditor": ["auditor"],
    "api": ["inference", "monitor"],
    "retrainer": ["monitor", "trainer"],
}


# The demo's training config: what a user would keep in git beside their code.
TRAIN_CONFIG = """\
format: 1
name: breast-cancer-xgb
dataset: breast-cancer@latest
target: diagnosis
exclude: [patient_id]
seed: 7
model:
  type: xgboost
  params: {max_depth: 3, learning_rate: 0.1, subsample: 0.9}
  rounds: 120
  checkpoint_every: 40
preprocessing:
  - impute: {columns: numeric, strategy: median}
  - derive: {name: area_ratio, op: ratio, inputs: [worst_area, mean_area]}
validation: {method: holdout, test_size: 0.25, stratify: true}
metrics: [roc_auc, accuracy, f1]
gates:
  - roc_auc >= 0.95
  - roc_auc >= production - 0.01
tuning:
  trials: 6
  parallelism: 2
  objective: roc_auc
  folds: 3
  space:
    max_depth: {type: int, low: 2, high: 5}
    learning_rate: {type: float, low: 0.03, high: 0.3, log: true}
register:
  model: breast-cancer
  description: Flags likely malignant tumours from a fine-needle aspirate's cell measurements.
card:
  intended_use: Decision support for pathologists reviewing FNA samples; never a diagnosis alone.
  limitations: 400 patients from one Wisconsin hospital (1995); not validated elsewhere.
  owner: ml-team@example.org
"""


_QUIET_ACTIONS = frozenset(
    {"object.put", "run.metrics", "run.params", "run.dataset", "run.checkpoint", "run.model"}
)


def _sample_csv() -> bytes:
    """A small real data set: the first rows of Fisher's iris measurements (public domain)."""
    rows = [
        "sepal_length,sepal_width,petal_length,petal_width,species",
        "5.1,3.5,1.4,0.2,setosa",
        "4.9,3.0,1.4,0.2,setosa",
        "7.0,3.2,4.7,1.4,versicolor",
        "6.4,3.2,4.5,1.5,versicolor",
        "6.3,3.3,6.0,2.5,virginica",
        "5.8,2.7,5.1,1.9,virginica",
    ]
    return ("\n".join(rows) + "\n").encode()


def _data_gate(out: Any, steward: Any, root: Path) -> None:
    """Ingest a good file and a broken one through the quality gate and show both outcomes."""
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest
    from aidlc.data.report import render_table
    from aidlc.data.versions import read_version
    from aidlc.demo import breast_cancer

    out.rule("[bold]Infrastructure[/] — the data quality gate")
    inbox = root / "inbox"
    inbox.mkdir(exist_ok=True)
    good, bad = breast_cancer.write_files(inbox)
    contract = parse_contract(breast_cancer.contract(breast_cancer.frame()), source="demo contract")
    checks = sum(
        1
        + c.unique
        + (c.min is not None)
        + (c.max is not None)
        + bool(c.allowed)
        + bool(c.regex)
        + (not c.nullable)
        for c in contract.columns
    )
    out.print(
        f"contract breast-cancer: {len(contract.columns)} columns, about {checks} column checks, "
        "patient_id is the subject id (pii)"
    )
    first = ingest(steward, good, "breast-cancer", contract=contract)
    out.print(
        f"[green]✓ accepted[/] {good.name} → [bold]{first.ref}[/]: {first.rows} rows, "
        f"raw sha256 {first.source_sha256[:16]}…, stored encrypted as Parquet with a profile"
    )
    second = ingest(steward, bad, "breast-cancer")
    out.print(f"[red]✗ rejected[/] {bad.name}: {second.failed_rows} failing rows")
    failed = {
        **second.report,
        "checks": [c for c in second.report["checks"] if c["passed"] is False],
    }
    out.print(render_table(failed))
    out.print(
        f"  kept byte for byte in quarantine ({second.quarantine_object}) with its report; "
        "an alert was raised"
    )
    rows = read_version(steward, "breast-cancer@latest").height
    out.print(f"  training can read only validated versions: breast-cancer@latest has {rows} rows")


def _deployment(out: Any, ws_root: Path, tokens: dict[str, str], root: Path) -> None:
    """Train from a config, register a signed version, refuse self-approval, approve, export."""
    import subprocess  # nosec B404: runs the OpenSSF verifier with fixed arguments
    import sys

    from aidlc.core.workspace import Workspace
    from aidlc.errors import PermissionDenied
    from aidlc.registry import approval, versions
    from aidlc.train import runner

    out.rule("[bold]Deployment[/] — training, registry, signing, approval")
    (root / "train.yaml").write_text(TRAIN_CONFIG)
    lead = Workspace.open(ws_root, token=tokens["lead"])
    out.print("lead trains from train.yaml (xgboost, 6 tuning trials, 3-fold CV, quality gates)")
    outcome = runner.train(
        lead,
        TRAIN_CONFIG,
        source="train.yaml",
        directory=root,
        register=versions.registrar(lead),
        production_metrics=lambda name: versions.production_metrics(lead, name),
    )
    tuned = outcome.tuning["best"]["params"] if outcome.tuning else {}
    out.print(
        f"  run {outcome.run_id} on {outcome.dataset}: {outcome.rows['train']} train / "
        f"{outcome.rows['test']} test rows; best trial {tuned}"
    )
    out.print("  test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in outcome.metrics.items()))
    for gate in outcome.gates:
        mark = "[green]pass[/]" if gate["passed"] else "[red]FAIL[/]"
        out.print(f"  gate {mark} {gate['text']} ({gate['detail']})")
    version = versions.resolve(lead, outcome.model_version or "breast-cancer")
    out.print(
        f"[green]✓ registered[/] {version.ref} as candidate: digest {version.model_digest[:16]}…, "
        "OpenSSF signature, model card, CycloneDX ML-BOM, baseline profile"
    )
    try:
        approval.approve(lead, version.ref, to="production", reason="I trained it and like it")
    except PermissionDenied as exc:
        out.print(f"  lead tries to approve her own version: [yellow]denied[/] ({exc.message})")
    lead.close()

    approver = Workspace.open(ws_root, token=tokens["approver"])
    check = versions.verify(approver, version.ref)
    out.print(
        f"approver verifies {check.ref}: signature and {len(check.files)} files, "
        f"{len(check.documents)} documents [green]intact[/]"
    )
    approved = approval.approve(
        approver, version.ref, to="production", reason="gates passed; card reviewed"
    )
    out.print(f"[green]✓ approved[/] {approved.ref} → production (aliases: {approved.aliases})")
    export_dir = root / "export"
    versions.export(approver, f"{version.name}@production", export_dir)
    model = versions.load_model(approver, f"{version.name}@production", require_approved=True)
    approver.close()
    from aidlc.demo import breast_cancer

    sample = breast_cancer.frame().tail(3)
    out.print(
        f"  loaded after verification; predicts {model.predict(sample)} "
        f"for the last 3 patients (truth {sample['diagnosis'].to_list()})"
    )
    proc = subprocess.run(  # noqa: S603  # nosec B603: the OpenSSF verifier on files we just wrote
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            "--signature",
            str(export_dir / "model.sig"),
            "--public_key",
            str(export_dir / "signing-key.pub.pem"),
            str(export_dir / "model"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    verdict = "[green]accepts it[/]" if proc.returncode == 0 else "[red]REFUSES it[/]"
    out.print(
        f"  exported to {export_dir.name}/ (model/, model.sig, signing-key.pub.pem, model card, "
        f"ML-BOM); the OpenSSF `model_signing verify key` {verdict}"
    )


def _serve_thread(server: Any) -> tuple[Any, Any, str]:
    """Run the app on a free loopback port in a thread; returns (uvicorn server, thread, url)."""
    import socket
    import threading
    import time

    import uvicorn

    from aidlc.serve.app import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(server), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    http = uvicorn.Server(config)
    thread = threading.Thread(target=http.run, name="aidlc-quickstart-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not http.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    return http, thread, f"http://127.0.0.1:{port}"


def _ood_row(served: Any, row: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The row with one feature moved inside the contract's range but beyond training's."""
    limits = {c["name"]: c.get("max") for c in served.schema}
    for name, ref in served._refs.items():
        top = limits.get(name)
        if ref.high is not None and isinstance(top, int | float) and top > ref.high:
            return {**row, name: (ref.high + top) / 2}, name
    return None


def _learning(out: Any, ws_root: Path, tokens: dict[str, str], root: Path) -> None:
    """Serve the production model over HTTP: good, bad, unauthorised and over-limit requests,
    feedback, a canary promoted by the server, a rollback, prediction logs and metrics."""
    import time

    import httpx

    from aidlc.core.config import CanaryPolicy
    from aidlc.core.workspace import Workspace
    from aidlc.demo import breast_cancer
    from aidlc.registry import approval, versions
    from aidlc.serve import predlog, rollout
    from aidlc.serve.app import Server
    from aidlc.train import runner

    out.rule("[bold]Learning[/] — the inference API, rollouts, prediction logs")
    api = Workspace.open(ws_root, token=tokens["api"])
    settings = api.config.serve.model_copy(update={"rate_limit": "20/second", "poll_seconds": 0.2})
    server = Server(api, settings)
    http, thread, url = _serve_thread(server)
    name = "breast-cancer"
    auth = {"Authorization": f"Bearer {tokens['api']}"}
    frame = breast_cancer.frame()
    rows = frame.drop(["patient_id", "diagnosis"]).tail(3).to_dicts()
    truth = frame["diagnosis"].tail(3).to_list()
    predict = f"{url}/v1/models/{name}:predict"
    try:
        out.print(f"api (inference + monitor roles only) serves {name}@production on {url}")
        with httpx.Client(timeout=30) as client:
            r = client.post(predict, headers=auth, json={"records": rows, "probabilities": True})
            answer = r.json()
            shown = [p["prediction"] for p in answer["predictions"]]
            out.print(
                f"  POST /v1/models/{name}:predict (3 patients) → {r.status_code}: {shown} from "
                f"version {answer['version']} (truth {truth}), request id "
                f"{r.headers['x-request-id'][:8]}…"
            )
            r = client.post(predict, json={"records": rows})
            out.print(f"  without a token → {r.status_code} {r.json()['error']}")
            lead = {"Authorization": f"Bearer {tokens['lead']}"}
            r = client.post(predict, headers=lead, json={"records": rows})
            out.print(f"  with the trainer's token → {r.status_code} {r.json()['error']}")
            bad = {**rows[0], "mean_radius": "large", "favourite_colour": "blue"}
            r = client.post(predict, headers=auth, json={"records": [bad]})
            problems = "; ".join(f"{p['field']} {p['problem']}" for p in r.json()["problems"])
            out.print(f"  a malformed record → {r.status_code}: {problems}")
            moved = _ood_row(server.slot(name).production, rows[0])
            if moved is not None:
                r = client.post(predict, headers=auth, json={"records": [moved[0]]})
                flagged = r.json()["predictions"][0]
                out.print(
                    f"  {moved[1]} beyond anything seen in training → {r.status_code}, "
                    f"ood={flagged['ood']}: {'; '.join(flagged.get('ood_reasons', []))}"
                )
            labels = [
                {"prediction_id": p["prediction_id"], "label": t}
                for p, t in zip(answer["predictions"], truth, strict=True)
            ]
            r = client.post(
                f"{url}/v1/feedback", headers=auth, json={"model": name, "feedback": labels}
            )
            out.print(f"  POST /v1/feedback with the true diagnoses → {r.status_code} {r.json()}")
            codes: dict[int, int] = {}
            retry = ""
            for _ in range(30):
                r = client.post(predict, headers=auth, json={"records": rows[:1]})
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                retry = r.headers.get("retry-after", retry)
            out.print(
                "  a burst of 30 requests against the 20/second limit → "
                + ", ".join(f"{n} x {c}" for c, n in sorted(codes.items()))
                + (f" (Retry-After: {retry} s)" if retry else "")
            )

            lead_ws = Workspace.open(ws_root, token=tokens["lead"])
            # the same recipe without tuning, another seed: a retrained candidate
            before, _, rest = TRAIN_CONFIG.partition("tuning:")
            quick = before + "register:" + rest.partition("register:")[2]
            outcome = runner.train(
                lead_ws,
                quick.replace("seed: 7", "seed: 8"),
                register=versions.registrar(lead_ws),
                production_metrics=lambda n: versions.production_metrics(lead_ws, n),
            )
            lead_ws.close()
            approver = Workspace.open(ws_root, token=tokens["approver"])
            candidate = approval.approve(
                approver, outcome.model_version or name, to="staging", reason="retrained"
            )
            policy = CanaryPolicy(promote_after=30, min_requests=10, max_latency_ratio=20)
            rollout.deploy(
                approver, candidate.ref, canary=50, policy=policy, reason="try the retrained model"
            )
            out.print(
                f"approver: `aidlc deploy {candidate.ref} --canary 50` (promote after "
                f"{policy.promote_after} clean requests; roll back on error rate > "
                f"{policy.max_error_rate}, divergence > {policy.max_divergence})"
            )
            time.sleep(1.0)
            everyone = frame.drop(["patient_id", "diagnosis"]).to_dicts()
            seen: dict[int, int] = {}
            for i in range(400):
                if i % 10 == 0 and rollout.deployments(approver, name)[0].status != "active":
                    break
                r = client.post(
                    predict,
                    headers=auth,
                    json={"records": [everyone[i % len(everyone)]]},
                )
                if r.status_code == 200:
                    v = r.json()["version"]
                    seen[v] = seen.get(v, 0) + 1
                else:
                    time.sleep(float(r.headers.get("retry-after", "1")))
            done = rollout.deployments(approver, name)[0]
            out.print(
                f"  the server judged the canary: {done.status} after "
                f"{done.verdict.get('requests')} candidate requests (divergence "
                f"{done.verdict.get('divergence', 0):.3f}); answers by version: {seen}"
            )
            restored = rollout.rollback(approver, name, reason="demo: back to the tuned model")
            out.print(f"  `aidlc deploy rollback {name}` → production is {restored.ref} again")
            approver.close()
            deadline = time.monotonic() + 10
            while server.slot(name).production.version != restored.version:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            out.print(
                f"  the server hot-swapped to {name}@{server.slot(name).production.version} "
                "after verifying its signature"
            )
            metrics = client.get(f"{url}/metrics", headers=auth).text
    finally:
        http.should_exit = True
        thread.join(timeout=60)
    logged = predlog.read_batches(api, "predictions", model=name)
    feedback = predlog.read_batches(api, "feedback", model=name)
    out.print(
        f"server stopped cleanly: {len(logged)} predictions and {len(feedback)} labels in "
        "encrypted Parquet batches in the predictions zone"
    )
    api.close()
    wanted = (
        "aidlc_http_requests_total{",
        "aidlc_predictions_total{",
        "aidlc_ood_rows_total{",
        "aidlc_rate_limited_total ",
        "aidlc_model_info{",
    )
    lines = [line for line in metrics.splitlines() if line.startswith(wanted)]
    out.print("  /metrics (Prometheus), a selection:")
    for line in lines[:14]:
        out.print(f"    {line}", markup=False)


def _monitoring(out: Any, ws_root: Path, tokens: dict[str, str], root: Path) -> None:
    """Drifted traffic through the API, the monitor's report and alerts, and the retrained
    candidate that follows without anyone typing a command."""
    import httpx

    from aidlc.core.alerts import list_alerts
    from aidlc.core.workspace import Workspace
    from aidlc.demo import breast_cancer
    from aidlc.monitor import jobs, retrain, runner
    from aidlc.serve import rollout
    from aidlc.serve.app import Server

    name = "breast-cancer"
    out.rule("[bold]Learning[/] — monitoring: drift, quality, performance, alerts, retraining")
    approver = Workspace.open(ws_root, token=tokens["approver"])
    policy = retrain.set_policy(approver, name, "canary", canary_percent=25)
    out.print(
        f"approver: `aidlc monitor policy {name} --action canary --canary-percent 25` "
        f"(on {' or '.join(policy.triggers)}: retrain, then canary once approved)"
    )
    api = Workspace.open(ws_root, token=tokens["api"])
    server = Server(api, api.config.serve.model_copy(update={"rate_limit": "100/second"}))
    http, thread, url = _serve_thread(server)
    frame = breast_cancer.frame()
    rows = frame.drop(["patient_id", "diagnosis"]).to_dicts()
    shift = {"mean_radius": 1.4, "mean_perimeter": 1.4, "mean_area": 1.8}
    drifted = [{k: v * shift.get(k, 1.0) for k, v in r.items()} for r in rows[:300]]
    auth = {"Authorization": f"Bearer {tokens['api']}"}
    try:
        with httpx.Client(timeout=30) as client:
            ids: list[str] = []
            for i in range(0, len(drifted), 50):
                r = client.post(
                    f"{url}/v1/models/{name}:predict",
                    headers=auth,
                    json={"records": drifted[i : i + 50]},
                )
                ids.extend(p["prediction_id"] for p in r.json()["predictions"])
            truth = frame["diagnosis"].head(300).to_list()
            labels = [{"prediction_id": p, "label": t} for p, t in zip(ids, truth, strict=True)]
            client.post(
                f"{url}/v1/feedback", headers=auth, json={"model": name, "feedback": labels}
            )
            kpis = [{"name": "screenings", "value": 300}, {"name": "referrals", "value": 41}]
            client.post(f"{url}/v1/kpis", headers=auth, json={"model": name, "kpis": kpis})
    finally:
        http.should_exit = True
        thread.join(timeout=60)
    out.print(
        f"  {len(ids)} patients with enlarged radius, perimeter and area sent in 6 requests, "
        "their true diagnoses to /v1/feedback and two business KPIs to /v1/kpis"
    )
    (outcome,) = runner.run(api, model=name, window="1h")
    doc = outcome.document
    d = doc["drift"]
    out.print(
        f"api (monitor role): `aidlc monitor run --model {name} --window 1h` → report "
        f"{outcome.report.id}: [red]{outcome.report.verdict}[/] over {doc['rows']} predictions"
    )
    for f in sorted(d["features"], key=lambda f: -(f["score"] or 0))[:4]:
        out.print(
            f"  {f['name']}: {'drift' if f['drifted'] else 'stable'} — PSI {f['psi']:.2f}, "
            f"KS {f['statistic']:.2f} (p {f['p_value']:.1e}), "
            f"normalised Wasserstein {f['score']:.2f}"
        )
    out.print(
        f"  {len(d['drifted'])} of {len(d['features'])} features drifted; predictions "
        f"{'drifted' if (doc['prediction_drift'] or {}).get('drifted') else 'stable'}; "
        f"OOD rate {doc['quality']['ood_rate']:.0%}"
    )
    perf = doc["performance"]
    shown_kpis = ", ".join(f"{k} {v['last']:g}" for k, v in doc["kpis"].items())
    if perf["metrics"]:
        out.print(
            f"  performance on {perf['labelled']} labels: accuracy "
            f"{perf['metrics']['accuracy']:.3f} vs {perf['training'].get('accuracy', 0):.3f} "
            f"in training; KPIs {shown_kpis}"
        )
    html = root / "monitor-report.html"
    html.write_text(str(runner.get_report(api, outcome.report.id, html=True)), encoding="utf-8")
    out.print(f"  report page with reference vs current histograms: {html}")
    out.print(f"  retraining requested: {outcome.retraining}")
    api.close()

    retrainer = Workspace.open(ws_root, token=tokens["retrainer"])
    ran = jobs.run_all(retrainer)
    (request,) = retrain.requests(retrainer, name)[:1]
    out.print(
        f"retrainer's scheduler (`aidlc monitor schedule`, monitor + trainer roles) ran "
        f"{', '.join(ran)}: request {request.id} {request.status} → "
        f"{name}@{request.candidate_version}"
    )
    retrainer.close()
    auditor = Workspace.open(ws_root, token=tokens["auditor"])
    for alert in list_alerts(auditor, limit=5):
        out.print(f"  alert {alert.id} [{alert.severity}] {alert.source}: {alert.title}")
    auditor.close()
    if request.candidate_version:
        ref = f"{name}@{request.candidate_version}"
        started = retrain.approve(approver, ref, to="staging", reason="retrained on new data")
        deployment = started["deployment"]
        if deployment is not None:
            out.print(
                f"approver: `aidlc models approve {ref} --to staging` → canary at "
                f"{deployment.percent:g}% started by the policy; stopped for the demo"
            )
            rollout.stop(approver, name, reason="demo ends")
    approver.close()


def _notebook(out: Any, ws_root: Path, tokens: dict[str, str], root: Path) -> None:
    """Bring your own model: a scikit-learn Pipeline with a ColumnTransformer over numeric and
    text columns, fitted in plain Python, imported (aidlc judges it on held-out data), approved
    by someone else, served over HTTP and watched for drift."""
    import httpx
    import skops.io
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from aidlc.core.workspace import Workspace
    from aidlc.data.contract import parse_contract
    from aidlc.data.ingest import ingest
    from aidlc.data.versions import read_version
    from aidlc.demo import diabetes
    from aidlc.errors import PermissionDenied
    from aidlc.monitor import runner
    from aidlc.registry import approval, importing
    from aidlc.serve.app import Server

    out.rule("[bold]Deployment[/] — bring your own model: from a notebook to production")
    steward = Workspace.open(ws_root, token=tokens["steward"])
    train_file, holdout_file = diabetes.write_files(root / "inbox")
    contract = parse_contract(diabetes.contract(diabetes.frame()), source="demo contract")
    train_ref = ingest(steward, train_file, "diabetes", contract=contract).ref
    holdout_ref = ingest(steward, holdout_file, "diabetes").ref
    steward.close()
    out.print(
        f"steward ingests the diabetes study (Efron et al. 2004) through the gate: {train_ref} "
        f"({diabetes.TRAIN_ROWS} patients) for training, {holdout_ref} (110) held out"
    )

    lead = Workspace.open(ws_root, token=tokens["lead"])
    frame = read_version(lead, str(train_ref))
    numeric = ["age", "bmi", "bp", *diabetes.SERUM.values()]
    text = ["sex", "bmi_class"]
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("numbers", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                        ("categories", OneHotEncoder(handle_unknown="ignore"), text),
                    ]
                ),
            ),
            ("model", Ridge(alpha=1.0)),
        ]
    )
    pipeline.fit(frame.select(numeric + text), frame["progression"])
    notebook_file = root / "progression.skops"
    skops.io.dump(pipeline, notebook_file)
    out.print(
        "lead, in a notebook: Pipeline(ColumnTransformer(impute + scale 8 numbers, one-hot "
        "sex and bmi_class), Ridge), fitted on the validated rows, saved with skops.io.dump"
    )
    out.print(
        f"  `aidlc models import {notebook_file.name} --name progression --trained-on "
        f"{train_ref} --evaluate-on {holdout_ref} --target progression --gate 'r2 >= 0.3'`"
    )
    version = importing.import_model(
        lead,
        notebook_file,
        name="progression",
        trained_on=str(train_ref),
        evaluate_on=str(holdout_ref),
        target="progression",
        gates=["r2 >= 0.3"],
        owner="ml-team@example.org",
        intended_use="Flags patients whose disease may progress fastest, for an earlier review.",
        limitations="442 patients of one 2004 study; not validated for other populations.",
    )
    evaluation = version.statement["evaluation"]
    conversion = version.statement["imported"]["conversion"]
    out.print(
        f"[green]✓ imported[/] {version.ref}: aidlc's own metrics on {evaluation['rows']} "
        f"held-out patients: "
        + ", ".join(f"{k} {v:.3f}" for k, v in version.metrics.items())
        + f"; gate r2 >= 0.3 {'passed' if version.gates_passed else 'FAILED'}"
    )
    if conversion["served"] == "onnx":
        out.print(
            f"  converted with skl2onnx {conversion['converter_version']}: ONNX Runtime gives "
            f"the same values within {conversion['max_rel_diff']:.1e} (relative) on the "
            "held-out rows, so it serves the graph; the skops file stays as the reference"
        )
    else:
        out.print(f"  served from the skops file: {conversion['reason']}")
    out.print(
        "  inputs checked against the diabetes contract, signed, card + ML-BOM (scikit-learn, "
        "skl2onnx, ONNX opset), drift baseline from the training version"
    )
    try:
        approval.approve(lead, version.ref, reason="my notebook, my call")
    except PermissionDenied as exc:
        out.print(f"  lead tries to approve her import: [yellow]denied[/] ({exc.message})")
    lead.close()
    approver = Workspace.open(ws_root, token=tokens["approver"])
    approval.approve(approver, version.ref, reason="held-out metrics and card reviewed")
    approver.close()
    out.print(f"[green]✓ approved[/] by approver → {version.name}@production")

    api = Workspace.open(ws_root, token=tokens["api"])
    server = Server(api, api.config.serve.model_copy(update={"rate_limit": "100/second"}))
    http, thread, url = _serve_thread(server)
    auth = {"Authorization": f"Bearer {tokens['api']}"}
    predict = f"{url}/v1/models/progression:predict"
    holdout = diabetes.frame().filter(
        ~diabetes.frame()["patient_id"].is_in(frame["patient_id"].implode())
    )
    records = holdout.select(numeric + text).to_dicts()
    heavier = [
        {**r, "bmi": r["bmi"] * 1.25, "bmi_class": "obese"} for r in records
    ]  # a heavier population: bmi and its band move
    try:
        with httpx.Client(timeout=30) as client:
            r = client.post(predict, headers=auth, json={"records": records[:2]})
            shown = [round(p["prediction"], 1) for p in r.json()["predictions"]]
            out.print(
                f"  POST /v1/models/progression:predict (2 patients) → {r.status_code}: {shown}"
            )
            r = client.post(
                predict, headers=auth, json={"records": [{**records[0], "sex": "unknown"}]}
            )
            problem = r.json()["problems"][0]
            out.print(
                f"  sex = 'unknown' → {r.status_code}: {problem['field']} {problem['problem']}"
            )
            for i in range(0, len(heavier), 50):
                client.post(predict, headers=auth, json={"records": heavier[i : i + 50]})
    finally:
        http.should_exit = True
        thread.join(timeout=60)
    (report,) = runner.run(api, model="progression", window="1h")
    drift = report.document["drift"]
    out.print(
        f"  {len(heavier)} heavier patients later, `aidlc monitor run --model progression` → "
        f"{report.report.verdict}: drift in {', '.join(drift['drifted']) or 'nothing'}"
    )
    api.close()


# a control's status, coloured
_STATUS_COLOURS = {"pass": "green", "fail": "red"}  # nosec B105 - a verdict, not a password


def _governance(out: Any, ws_root: Path, tokens: dict[str, str]) -> None:
    """The compliance report, the production model's lineage, the posture check and the threat
    model, as an auditor sees them."""
    from aidlc.core.workspace import Workspace
    from aidlc.govern import compliance, doctor, lineage, threats

    out.rule("[bold]Compliance[/] — controls, lineage, posture, threats")
    auditor = Workspace.open(ws_root, token=tokens["auditor"])

    name = "breast-cancer"
    rep = compliance.report(auditor, "all")
    counts = rep.counts()
    out.print(
        "auditor: `aidlc compliance report --framework all` → "
        + ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items() if n)
    )
    for control in rep.controls:
        clauses = ", ".join(f"{c.framework} {c.id}" for c in control.clauses[:3])
        colour = _STATUS_COLOURS.get(control.status)
        mark = f"[{colour}]{control.status}[/]" if colour else control.status
        out.print(f"  {mark:<14} {control.title} ({clauses}): {control.summary}")
    graph = lineage.trace(auditor, f"{name}@production")
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    raw = [n.label for n in graph.nodes.values() if n.kind == "raw"]
    out.print(
        f"`aidlc lineage {name}@production`: "
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + f"; back to the raw file {raw[0] if raw else '?'}"
        + ("" if not graph.problems else f"; problems: {'; '.join(graph.problems)}")
    )
    mermaid = lineage.to_mermaid(graph).splitlines()
    out.print(f"  as Mermaid ({len(mermaid)} lines): {mermaid[0]} …", markup=False)
    checks = doctor.run_checks(auditor)
    tally = doctor.summary(checks)
    out.print(
        f"`aidlc doctor`: {tally['pass']} pass, {tally['warn']} warn, {tally['fail']} fail; "
        "warnings: " + ", ".join(c.id for c in checks if c.status == "warn")
    )
    model = threats.threat_model(auditor)
    states = model["summary"]
    out.print(
        f"`aidlc threat-model`: {len(model['threats'])} threats (MITRE ATLAS, OWASP ML Top 10): "
        + ", ".join(f"{n} {s}" for s, n in states.items())
    )
    auditor.close()


def _console(out: Any, ws_root: Path, tokens: dict[str, str]) -> None:
    """The web console as the auditor meets it: redirected to sign in, a session, the pages
    the role allows, the drift chart and the audit chain's status."""
    import re

    import httpx

    from aidlc.core.workspace import Workspace
    from aidlc.serve.app import Server

    out.rule("[bold]Console[/] — the web console at /console")
    api = Workspace.open(ws_root, token=tokens["api"])
    server = Server(api, api.config.serve)
    http, thread, url = _serve_thread(server)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            first = client.get("/console/monitoring")
            signed = client.post(
                "/console/login",
                data={"token": tokens["auditor"], "next": "/console/monitoring"},
            )
            page = client.get("/console/monitoring?model=breast-cancer").text
            audit = client.get("/console/audit").text
            cookie = signed.headers.get("set-cookie", "")
    finally:
        http.should_exit = True
        thread.join(timeout=60)
        api.close()
    nav = re.findall(r"<nav[^>]*>(.*?)</nav>", page, re.S)
    pages = re.findall(r">([A-Z][a-z]+)</a>", nav[0]) if nav else []
    chart = re.search(r'aria-label="(Drift score per feature over time[^"]*)"', page)
    verdict = re.search(r"Chain verification: <span[^>]*>(\w+)</span>", audit)
    intact = verdict is not None and verdict.group(1) == "ok"
    out.print(
        f"GET {url}/console/monitoring without a session → {first.status_code} to "
        f"{first.headers.get('location', '?')}"
    )
    flags = [
        f for f in ("HttpOnly", "SameSite=Strict", "Path=/console") if f.lower() in cookie.lower()
    ]
    out.print(
        f"auditor signs in with a token → {signed.status_code}, session cookie {', '.join(flags)}; "
        f"pages shown for the auditor role: {', '.join(pages)}"
    )
    out.print(
        f"  monitoring page: {chart.group(1) if chart else 'no drift chart'} (inline SVG, no "
        f"script); audit page: chain {'intact' if intact else 'NOT verified'}"
    )


def _shipping(out: Any, root: Path) -> None:
    """What takes a project from this laptop to AWS: CI/CD workflows for it, and where the
    images and the Terraform module are."""
    import yaml

    from aidlc.cicd import github

    out.rule("[bold]Deployment[/] — CI/CD for your project, images, AWS")
    project = root / "project"
    written = github.write_workflows(project)
    for path in written:
        doc = yaml.safe_load(path.read_text())
        gated = [n for n, job in doc["jobs"].items() if job.get("environment") == "production"]
        out.print(
            f"`aidlc init --ci github` wrote {path.relative_to(project)}: jobs "
            + ", ".join(doc["jobs"])
            + (
                f" ({', '.join(gated)} waits for the protected production environment)"
                if gated
                else ""
            )
        )
    out.print(
        "  images: deploy/docker/Dockerfile.api (non-root, read-only root, `aidlc health` check) "
        "and Dockerfile.lambda; AWS: deploy/terraform (Checkov-clean), whose aidlc_yaml output "
        "feeds `aidlc init --config` (docs/terraform.md)"
    )


def quickstart(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Keep the workspace here (and its demo tokens in quickstart-tokens.json); "
            "default: a temporary folder, removed afterwards.",
        ),
    ] = None,
) -> None:
    """Run the lifecycle end to end on a bundled data set and show what each phase did."""
    from aidlc.core import objects, principals
    from aidlc.core.audit import new_request_id
    from aidlc.core.workspace import Workspace
    from aidlc.errors import PermissionDenied

    out = console()
    keep = directory is not None
    root = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="aidlc-quickstart-"))
    new_request_id()
    try:
        out.rule("[bold]Architecture[/] — trust boundaries and default deny")
        admin_ws, admin_token = Workspace.init(root / "workspace", name="quickstart")
        ws_root = admin_ws.root
        out.print(f"Workspace created in {ws_root}")
        out.print(
            f"  key ring {admin_ws.config.keys.file} (mode 0600), "
            f"metadata {admin_ws.db.engine.url.get_backend_name()}, "
            f"objects in {admin_ws.config.store.path}"
        )
        tokens = {"admin": admin_token}
        for name, roles in DEMO_PRINCIPALS.items():
            info, token = principals.add(admin_ws, name, roles)
            tokens[name] = token
            out.print(f"  principal [bold]{info.name}[/] with role {', '.join(info.roles)}")
        admin_ws.close()

        out.rule("[bold]Infrastructure[/] — encrypted storage")
        steward = Workspace.open(ws_root, token=tokens["steward"])
        data = _sample_csv()
        stored = objects.put_bytes(steward, "raw", "iris.csv", data)
        out.print(
            f"steward stored raw/iris.csv@{stored.version}: {stored.size} bytes, "
            f"sha256 {stored.sha256[:16]}…, own AES-256-GCM data key wrapped by {stored.key_id}"
        )
        plaintext_found = any(
            b"setosa" in p.read_bytes() for p in (ws_root / ".aidlc").rglob("*") if p.is_file()
        )
        out.print(
            "  plaintext under .aidlc/: "
            + ("[red]FOUND[/]" if plaintext_found else "[green]none[/] (searched every file)")
        )
        back = objects.get_bytes(steward, "raw", "iris.csv")
        out.print(f"  read back and verified: {'identical' if back == data else 'DIFFERENT'}")
        _data_gate(out, steward, root)
        steward.close()
        _deployment(out, ws_root, tokens, root)
        _learning(out, ws_root, tokens, root)
        _monitoring(out, ws_root, tokens, root)
        _notebook(out, ws_root, tokens, root)

        auditor = Workspace.open(ws_root, token=tokens["auditor"])
        try:
            objects.put_bytes(auditor, "raw", "not-allowed.csv", b"x")
        except PermissionDenied as exc:
            out.print(f"  auditor tries to write raw data: [yellow]denied[/] ({exc.message})")

        admin = Workspace.open(ws_root, token=tokens["admin"])
        rotated = objects.rotate_keys(admin)
        admin.close()
        out.print(
            f"admin rotated the master key to {rotated['key_id']}: re-wrapped "
            f"{rotated['rewrapped']} data key(s), no object re-encrypted"
        )

        out.rule("[bold]Compliance[/] — tamper-evident audit log")
        verdict = auditor.audit.verify()
        head = auditor.audit.head()
        last = auditor.audit.events(limit=1)[0]
        proof = auditor.audit.prove(last.seq)

        proof_ok = proof.verify(auditor.audit_public_key())
        events = auditor.audit.events()
        shown = [e for e in events if e.action not in _QUIET_ACTIONS or e.outcome != "ok"]
        for event in shown[-20:]:
            mark = "[yellow]denied[/]" if event.outcome == "denied" else event.outcome
            out.print(
                f"  #{event.seq:<3} {event.actor:<8} {event.action:<20} {event.resource} {mark}"
            )
        out.print(
            f"  (the last {min(20, len(shown))} of {len(events)} events; object writes and run "
            "logging not listed: `aidlc audit log` shows all)"
        )
        out.print(
            f"audit verify: {'[green]intact[/]' if verdict.ok else '[red]TAMPERED[/]'} "
            f"({verdict.size} events, {verdict.heads_checked} signed tree heads)"
        )
        out.print(
            f"  signed tree head: size {head.tree_size}, root {head.root_hash.hex()[:16]}…, "
            f"Ed25519 key {head.key_id}"
        )
        out.print(
            f"  inclusion proof of event {last.seq}: {len(proof.audit_path)} hashes, "
            f"{'verifies' if proof_ok else 'FAILS'}"
        )
        auditor.close()
        _governance(out, ws_root, tokens)
        _console(out, ws_root, tokens)
        _shipping(out, root)

        if keep:
            path = root / "quickstart-tokens.json"
            payload = {
                "warning": "DEMO ONLY: quickstart tokens; never use them in production.",
                "workspace": str(ws_root),
                "tokens": tokens,
            }
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh, indent=2)
            os.chmod(path, 0o600)
            out.rule("Explore it")
            out.print(f"Workspace kept in {ws_root}; demo tokens in {path} (mode 0600).")
            out.print(
                f"  export AIDLC_WORKSPACE={ws_root}\n"
                "  export AIDLC_TOKEN=<the auditor token from that file>\n"
                "  aidlc audit log"
            )
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
