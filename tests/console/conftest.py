"""A served workspace for the console: the serve template (bc@1 production, bc@2 and bc@3 staging)
plus `lead`, who holds both the trainer and the approver role and trained bc@4 (not approved), so
the separation-of-duties rule can be seen refusing a principal whose role alone would allow it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.registry.helpers import train
from tests.serve.conftest import RECIPE, Served, records, served, served_template

__all__ = ["records", "served", "served_template"]

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@pytest.fixture(scope="session")
def console_template(served_template: Served, tmp_path_factory: pytest.TempPathFactory) -> Served:
    from aidlc.core import principals

    root = tmp_path_factory.mktemp("console") / "ws"
    shutil.copytree(served_template.root, root, symlinks=True)
    env = Served(root, dict(served_template.tokens))
    with env.open("admin") as admin:
        _, env.tokens["lead"] = principals.add(admin, "lead", ["trainer", "approver"])
    with env.open("lead") as lead:
        train(lead, RECIPE.format(features="exclude: [patient_id]", seed=5))
    return env


@pytest.fixture
def console_env(console_template: Served, tmp_path: Path) -> Served:
    """A private copy of the console workspace."""
    root = tmp_path / "ws"
    shutil.copytree(console_template.root, root, symlinks=True)
    return Served(root, dict(console_template.tokens))


@pytest.fixture
def console(console_env: Served) -> Iterator[Callable[..., Any]]:
    """`console(tls=False, **serve_settings)`: a started app (TestClient, no redirects followed)
    over the copied workspace, its server acting as `service`."""
    from starlette.testclient import TestClient

    from aidlc.core.config import ServeConfig
    from aidlc.serve.app import Server, create_app

    opened: list[tuple[Any, Any]] = []

    def make(*, tls: bool = False, **settings: Any) -> Any:
        ws = console_env.open("service")
        merged = {**ws.config.serve.model_dump(), "rate_limit": "1000/second", **settings}
        server = Server(ws, ServeConfig.model_validate(merged), tls=tls)
        base = "https://testserver" if tls else "http://testserver"
        client = TestClient(create_app(server), base_url=base, follow_redirects=False)
        client.__enter__()
        client.server = server  # type: ignore[attr-defined]
        opened.append((client, ws))
        return client

    yield make
    for client, ws in opened:
        client.__exit__(None, None, None)
        ws.close()


def sign_in(client: Any, token: str, next_path: str | None = None) -> Any:
    """Post the sign-in form; returns the response (303 on success)."""
    form = {"token": token}
    if next_path is not None:
        form["next"] = next_path
    return client.post("/console/login", data=form)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)
