"""`aidlc serve` and `aidlc deploy`: run the inference server; roll model versions out and back."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aidlc.cli.context import console, emit_json, find_workspace, open_workspace, read_token
from aidlc.errors import PermissionDenied, UsageError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from aidlc.core.auth import Principal

MODELS_ENV = "AIDLC_SERVE_MODELS"
TLS_ENV = "AIDLC_SERVE_TLS"
SERVICE_ROLES = frozenset({"inference", "monitor"})


def check_service_principal(principal: Principal | None) -> None:
    """The server runs with the inference role (and monitor), never with more."""
    if principal is None:
        raise PermissionDenied("the server needs a token", hint="set AIDLC_TOKEN")
    if "inference" not in principal.roles:
        raise PermissionDenied(
            f"{principal.name} cannot run the server: it needs the inference role",
            hint="create a service principal: `aidlc user add api --role inference`",
        )
    extra = sorted(principal.roles - SERVICE_ROLES)
    if extra:
        raise PermissionDenied(
            f"{principal.name} holds {', '.join(extra)} beyond what a server needs; a server "
            "runs as a principal with only the inference (and monitor) roles",
            hint="create a service principal: `aidlc user add api --role inference`",
        )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_environment() -> FastAPI:
    """The app factory each worker process calls (`uvicorn --factory`)."""
    from aidlc.core.workspace import Workspace
    from aidlc.serve.app import Server, create_app
    from aidlc.serve.observe import json_logging

    json_logging()
    ws = Workspace.open(find_workspace(), token=read_token())
    check_service_principal(ws.principal)
    names = json.loads(os.environ.get(MODELS_ENV) or "null")
    server = Server(ws, ws.config.serve, names=names, tls=os.environ.get(TLS_ENV) == "1")
    if ws.config.monitor.schedules and ws.principal and ws.principal.may("monitor.run"):
        from aidlc.monitor.jobs import scheduler_for

        # Every worker runs the scheduler; each fire time is claimed in the database, so a
        # schedule runs once per fire time however many workers and replicas there are.
        server.companions.append(scheduler_for(ws))
    return create_app(server)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Processes.")] = 1,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", help="Serve only these models (default: every production one)."),
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="PEM certificate.")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="PEM private key.")] = None,
    allow_plain_http: Annotated[
        bool,
        typer.Option(
            "--allow-plain-http",
            help="Bind a non-loopback address without TLS (behind a TLS-terminating proxy only).",
        ),
    ] = False,
) -> None:
    """Serve the production version of each model over HTTP(S) with the inference API.

    The server acts as the principal of $AIDLC_TOKEN (or the 0600 credentials file), which must
    hold the inference role and nothing beyond inference and monitor.
    """
    import uvicorn

    from aidlc.core.workspace import Workspace

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("give both --tls-cert and --tls-key, or neither")
    tls = tls_cert is not None
    if not tls and not _loopback(host) and not allow_plain_http:
        raise UsageError(
            f"refusing to serve on {host} without TLS: tokens and data would cross the network "
            "in clear text",
            hint="give --tls-cert and --tls-key, or --allow-plain-http behind a TLS proxy",
        )
    root = find_workspace()
    with Workspace.open(root, token=read_token()) as ws:
        check_service_principal(ws.principal)
        settings = ws.config.serve
    if (
        workers > 1
        and settings.rate_limit_storage.startswith("memory://")
        and not os.environ.get("AIDLC_RATE_LIMIT_STORAGE")
    ):
        sys.stderr.write(
            "aidlc: warning: with several workers and memory:// rate-limit storage each worker "
            "counts its own limit; set serve.rate_limit_storage to redis://...\n"
        )
    os.environ["AIDLC_WORKSPACE"] = str(root.resolve())
    os.environ[MODELS_ENV] = json.dumps(model or None)
    os.environ[TLS_ENV] = "1" if tls else "0"
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "workers": workers,
        "factory": True,
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "proxy_headers": False,
        "timeout_graceful_shutdown": 30,
    }
    if tls:
        options.update(ssl_certfile=str(tls_cert), ssl_keyfile=str(tls_key))
    if workers > 1:
        metrics_dir = tempfile.mkdtemp(prefix="aidlc-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    scheme = "https" if tls else "http"
    sys.stderr.write(f"aidlc: serving {root} on {scheme}://{host}:{port} ({workers} worker(s))\n")
    signal.signal(signal.SIGTERM, _stopped)
    uvicorn.run("aidlc.cli.serve:from_environment", **options)


def _stopped(signum: int, frame: Any) -> None:
    # uvicorn shuts down gracefully on SIGTERM (logs drained), then raises the signal again once
    # done; a stop asked for and completed exits 0, as it does with several workers.
    raise SystemExit(0)


_POLICY_HELP = "overrides serve.canary in aidlc.yaml for this rollout"


def deploy(
    target: Annotated[
        str,
        typer.Argument(
            help="NAME@V to deploy, or one of: rollback NAME, stop NAME, status NAME.",
            metavar="NAME@V | rollback NAME | stop NAME | status NAME",
        ),
    ],
    name: Annotated[
        str | None, typer.Argument(help="The model, after rollback/stop/status.")
    ] = None,
    canary: Annotated[
        float | None, typer.Option("--canary", help="Percent of traffic for the candidate.")
    ] = None,
    shadow: Annotated[
        bool, typer.Option("--shadow", help="Mirror traffic to the candidate; it answers nobody.")
    ] = False,
    promote_after: Annotated[int | None, typer.Option(help=_POLICY_HELP)] = None,
    min_requests: Annotated[int | None, typer.Option(help=_POLICY_HELP)] = None,
    max_error_rate: Annotated[float | None, typer.Option(help=_POLICY_HELP)] = None,
    max_latency_ratio: Annotated[float | None, typer.Option(help=_POLICY_HELP)] = None,
    max_divergence: Annotated[float | None, typer.Option(help=_POLICY_HELP)] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")] = "",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Roll an approved version out: at once, as a canary, or as a shadow; or roll back.

    Examples: `aidlc deploy churn@4`, `aidlc deploy churn@4 --canary 10`,
    `aidlc deploy churn@4 --shadow`, `aidlc deploy rollback churn`, `aidlc deploy status churn`.
    """
    from pydantic import ValidationError

    from aidlc.core.config import CanaryPolicy
    from aidlc.serve import rollout

    verb = target if target in ("rollback", "stop", "status") else None
    if verb is not None and not name:
        raise UsageError(f"`aidlc deploy {verb}` needs the model name")
    name = name or ""
    if verb is None and name:
        raise UsageError(f"unexpected argument {name[:60]!r}")
    with open_workspace() as ws:
        if verb == "status":
            found = [d.to_json() for d in rollout.deployments(ws, name)]
            if json_out:
                emit_json(found)
                return
            _show_deployments(found)
            return
        if verb == "rollback":
            version = rollout.rollback(ws, name, reason=reason or "rollback")
            _done(json_out, version.to_json(), f"production of {name} is back at {version.ref}")
            return
        if verb == "stop":
            stopped = rollout.stop(ws, name, reason=reason or "stopped")
            _done(json_out, stopped.to_json(), f"stopped the {stopped.mode} of {name}")
            return
        overrides = {
            k: v
            for k, v in {
                "promote_after": promote_after,
                "min_requests": min_requests,
                "max_error_rate": max_error_rate,
                "max_latency_ratio": max_latency_ratio,
                "max_divergence": max_divergence,
            }.items()
            if v is not None
        }
        try:
            policy = CanaryPolicy.model_validate(
                {**ws.config.serve.canary.model_dump(), **overrides}
            )
        except ValidationError as exc:
            from aidlc.core.problems import describe

            raise UsageError("invalid rollout policy: " + "; ".join(describe(exc))) from None
        result = rollout.deploy(
            ws, target, canary=canary, shadow=shadow, policy=policy, reason=reason or "deployed"
        )
    if isinstance(result, rollout.Deployment):
        share = "a copy of all traffic" if result.mode == "shadow" else f"{result.percent:g}%"
        _done(
            json_out,
            result.to_json(),
            f"started {result.mode} {result.id}: {result.name}@{result.candidate} gets {share} "
            f"beside production {result.production}; promoted after "
            f"{result.policy.promote_after} clean requests, rolled back on a breach",
        )
    else:
        _done(json_out, result.to_json(), f"{result.ref} is now production")


def _done(json_out: bool, doc: dict[str, Any], text: str) -> None:
    if json_out:
        emit_json(doc)
    else:
        console().print(f"[green]✓[/] {text}")


def _show_deployments(found: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("id", "mode", "candidate", "production", "%", "status", "started by", "verdict")
    for d in found:
        verdict = d["verdict"]
        shown = "; ".join(verdict.get("breaches") or []) or (
            f"{verdict.get('requests', '')} requests" if verdict else ""
        )
        table.add_row(
            str(d["id"]),
            d["mode"],
            str(d["candidate"]),
            str(d["production"]),
            f"{d['percent']:g}",
            d["status"],
            d["started_by"],
            shown,
        )
    console().print(table)
