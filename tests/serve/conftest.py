"""A workspace with served models, built once per test process and copied for each test.

`bc@1` is production; `bc@2` (same recipe, another seed: a good candidate) and `bc@3` (trained on
one weak feature: a bad candidate) are approved to staging. The copy keeps the key ring, the
objects and the SQLite database, so each test gets an independent, fully working workspace.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.registry.helpers import ingest_demo, train

RECIPE = """\
format: 1
name: bc
dataset: breast-cancer@latest
target: diagnosis
{features}
seed: {seed}
model:
  type: xgboost
  params: {{max_depth: 3, learning_rate: 0.2}}
  rounds: 30
preprocessing:
  - impute: {{columns: numeric, strategy: median}}
validation: {{method: holdout, test_size: 0.25}}
metrics: [roc_auc, accuracy]
gates:
  - roc_auc >= 0.5
register: {{model: bc, description: breast cancer demo}}
card: {{intended_use: tests, owner: qa}}
"""

USERS = {
    "steward": ["data-steward"],
    "trainer": ["trainer"],
    "approver": ["approver"],
    "inference": ["inference"],
    "service": ["inference", "monitor"],
    "monitor": ["monitor"],
    "auditor": ["auditor"],
    "admin2": ["admin", "inference"],
}


@dataclass
class Served:
    """A workspace folder and the tokens of its principals."""

    root: Path
    tokens: dict[str, str]

    def open(self, who: str = "inference") -> Any:
        from aidlc.core.workspace import Workspace

        return Workspace.open(self.root, token=self.tokens[who])

    def headers(self, who: str = "inference") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture(scope="session")
def served_template(tmp_path_factory: pytest.TempPathFactory) -> Served:
    from aidlc.core import principals
    from aidlc.core.workspace import Workspace
    from aidlc.registry import approval

    base = tmp_path_factory.mktemp("served")
    ws, admin = Workspace.init(base / "ws")
    tokens = {"admin": admin}
    for name, roles in USERS.items():
        _, tokens[name] = principals.add(ws, name, roles)
    ws.close()
    env = Served(base / "ws", tokens)
    ingest_demo(env, base / "data")
    with env.open("trainer") as t:
        train(t, RECIPE.format(features="exclude: [patient_id]", seed=3))
        train(t, RECIPE.format(features="exclude: [patient_id]", seed=4))
        train(t, RECIPE.format(features="features: [mean_fractal_dimension]", seed=3))
    with env.open("approver") as a:
        approval.approve(a, "bc@1", reason="first production version")
        approval.approve(a, "bc@2", to="staging", reason="good candidate")
        approval.approve(a, "bc@3", to="staging", reason="bad candidate, for canary tests")
    return env


@pytest.fixture
def served(served_template: Served, tmp_path: Path) -> Served:
    """A private copy of the template workspace."""
    root = tmp_path / "ws"
    shutil.copytree(served_template.root, root, symlinks=True)
    return Served(root, dict(served_template.tokens))


@pytest.fixture
def records() -> list[dict[str, Any]]:
    """Real rows of the demo data set, as a client would send them (no id, no target)."""
    from aidlc.demo import breast_cancer

    frame = breast_cancer.frame().drop(["patient_id", "diagnosis"])
    return frame.head(200).to_dicts()


@pytest.fixture
def client_for(served: Served) -> Iterator[Any]:
    """`client_for(**serve_settings)`: a started app (TestClient) over the copied workspace,
    acting as the `service` principal, with `serve:` settings overridden."""
    from starlette.testclient import TestClient

    from aidlc.core.config import ServeConfig
    from aidlc.serve.app import Server, create_app

    opened: list[tuple[Any, Any]] = []

    def make(**settings: Any) -> Any:
        ws = served.open("service")
        config = ServeConfig.model_validate({**ws.config.serve.model_dump(), **settings})
        server = Server(ws, config)
        client = TestClient(create_app(server))
        client.__enter__()
        client.server = server  # type: ignore[attr-defined]
        opened.append((client, ws))
        return client

    yield make
    for client, ws in opened:
        client.__exit__(None, None, None)
        ws.close()
