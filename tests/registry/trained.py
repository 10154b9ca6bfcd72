"""One trained registry per test module, copied for each test: the registry's decisions are
tested on a real workspace without training a model per test."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import ROLE_USERS, Env
from tests.registry.helpers import config, ingest_demo, train


def build(root: Path) -> Env:
    """A workspace where `lead` (trainer and approver) trained bc@1, which passed its gates,
    and `trainer` trained bc@2, which failed them."""
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace

    ws, token = Workspace.init(root / "ws")
    tokens = {"admin": token}
    for name, role in ROLE_USERS.items():
        _, tokens[name] = principals.add(ws, name, [role])
    _, tokens["lead"] = principals.add(ws, "lead", ["trainer", "approver"])
    ws.close()
    env = Env(root=ws.root, tokens=tokens)
    ingest_demo(env, root / "inbox")
    with env.open("lead") as lead:
        assert train(lead, config(rounds=5, every=5)).gates_passed
    with env.open("trainer") as trainer:
        assert not train(trainer, config(rounds=5, every=5, gate=1.01)).gates_passed
    return env


def copy(env: Env, into: Path) -> Env:
    return Env(root=Path(shutil.copytree(env.root, into / "ws")), tokens=dict(env.tokens))


def restate(env: Env, ref: str, edit: Callable[[dict[str, Any]], None], *, key: Any = None) -> None:
    """As a holder of the workspace's keys would: rewrite a version's statement with `edit` and
    sign it again (with `key`, by default the workspace's own model-signing key)."""
    from aidlc.core.meta import ModelVersionRecord
    from aidlc.registry import versions

    with env.open("admin") as ws:
        with ws.db.reading() as session:
            _, rec = versions.version_record(session, *versions.parse_model_ref(ref))
        statement = json.loads(rec.statement)
        edit(statement)
        signer = key or versions.signing_key(ws)
        with ws.db.transaction() as session:
            row = session.get(ModelVersionRecord, rec.id)
            row.statement = json.dumps(statement, sort_keys=True)
            row.statement_signature = versions._sign_statement(signer, statement)


def store(env: Env, object_id: str, data: bytes) -> str:
    """Store `data` in the models zone; returns its object ref."""
    from aidlc.core import objects

    with env.open("trainer") as ws:
        return objects.put_bytes(ws, "models", object_id, data).ref
