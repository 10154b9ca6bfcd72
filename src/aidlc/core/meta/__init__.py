"""Metadata: SQLAlchemy 2 models, the database handle and Alembic migrations.

SQLite (WAL) by default, PostgreSQL by URL; no SQL here is specific to either.
"""

from aidlc.core.meta.db import Database
from aidlc.core.meta.models import (
    AlertRecord,
    ContractRecord,
    DatasetRecord,
    DatasetVersionRecord,
    IngestRecord,
    AuditEvent,
    AuditState,
    Base,
    PrincipalRecord,
    PrincipalRole,
    StoredObject,
    TokenRecord,
    TreeHeadRecord,
    WorkspaceKey,
    WorkspaceSetting,
)

__all__ = [
    "AlertRecord",
    "ContractRecord",
    "DatasetRecord",
    "DatasetVersionRecord",
    "IngestRecord",
    "AuditEvent",
    "AuditState",
    "Base",
    "Database",
    "PrincipalRecord",
    "PrincipalRole",
    "StoredObject",
    "TokenRecord",
    "TreeHeadRecord",
    "WorkspaceKey",
    "WorkspaceSetting",
]
