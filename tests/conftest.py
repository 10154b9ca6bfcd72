"""Shared fixtures: real servers (moto, PostgreSQL) live in their own modules."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.moto_server", "tests.pg_server"]

# A busy machine (CI beside other jobs, `make mutation` with a worker per core) makes any example
# slow: no verdict in the suite may depend on wall-clock speed, so no deadline and no "too slow"
# health check. Tests that need other settings say so with @settings, which inherits these.
_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.large_base_example, HealthCheck.data_too_large]
settings.register_profile("aidlc", deadline=None, suppress_health_check=_SLOW_IS_FINE)
# `make mutation` (--hypothesis-profile=mutation): the same examples for every mutant, so a mutant
# is killed or survives on its merits, not on what a random draw happened to try
settings.register_profile(
    "mutation", deadline=None, suppress_health_check=_SLOW_IS_FINE, derandomize=True, database=None
)
settings.load_profile("aidlc")


@dataclass
class Env:
    """A fresh workspace and the tokens of one principal per role."""

    root: Path
    tokens: dict[str, str]

    def open(self, who: str = "admin"):
        from aidlc.core.workspace import Workspace

        return Workspace.open(self.root, token=self.tokens[who])


ROLE_USERS = {
    "steward": "data-steward",
    "trainer": "trainer",
    "approver": "approver",
    "inference": "inference",
    "monitor": "monitor",
    "auditor": "auditor",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def metadata_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Callable[..., Env]:
    """Build a workspace; `backend="postgres"` puts its metadata on the throwaway server."""

    def build(backend: str = "sqlite", *, users: dict[str, str] | None = None, **settings) -> Env:
        from aidlc.core import principals
        from aidlc.core.workspace import Workspace

        if backend == "postgres":
            url = request.getfixturevalue("pg_url")
            monkeypatch.setenv("AIDLC_TEST_DATABASE_URL", url)
            settings.setdefault("metadata", {"url_env": "AIDLC_TEST_DATABASE_URL"})
        ws, token = Workspace.init(tmp_path / "ws", settings=settings or None)
        tokens = {"admin": token}
        for name, role in (ROLE_USERS if users is None else users).items():
            _, tokens[name] = principals.add(ws, name, [role])
        ws.close()
        return Env(root=ws.root, tokens=tokens)

    return build


@pytest.fixture
def env(make_env: Callable[..., Env], metadata_backend: str) -> Iterator[Env]:
    """A workspace on each metadata backend (SQLite and a real PostgreSQL)."""
    yield make_env(metadata_backend)


@pytest.fixture
def local_env(make_env: Callable[..., Env]) -> Env:
    """A workspace on SQLite only, for tests about files and processes, not the database."""
    return make_env("sqlite")


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray cluster per test process, shared by every module that needs one: starting
    one costs seconds, and Ray allows one per process."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
