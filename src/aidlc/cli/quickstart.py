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
    "auditor": ["auditor"],
}


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
        for event in auditor.audit.events():
            mark = "[yellow]denied[/]" if event.outcome == "denied" else event.outcome
            out.print(
                f"  #{event.seq:<3} {event.actor:<8} {event.action:<20} {event.resource} {mark}"
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
