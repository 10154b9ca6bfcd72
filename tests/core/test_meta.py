"""Metadata: migrations build the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest


def _db_url(metadata_backend: str, request, tmp_path) -> str:
    if metadata_backend == "postgres":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'meta.db'}"


def test_migrations_match_the_models(metadata_backend, request, tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from aidlc.core.meta import Base, Database

    db = Database(_db_url(metadata_backend, request, tmp_path))
    db.upgrade()
    db.upgrade()  # idempotent
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    assert db.current_revision() is not None
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    from sqlalchemy import text

    from aidlc.core.meta import Database

    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.upgrade()
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2
    db.dispose()


def test_postgres_workspace_keeps_its_password_out_of_the_config(make_env, pg_url):
    env = make_env("postgres")
    config = (env.root / "aidlc.yaml").read_text()
    assert "url_env: AIDLC_TEST_DATABASE_URL" in config
    password = pg_url.split(":")[2].split("@")[0]
    assert password not in config
    ws = env.open("auditor")
    assert ws.db.engine.dialect.name == "postgresql"
    assert ws.audit.verify().ok


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
