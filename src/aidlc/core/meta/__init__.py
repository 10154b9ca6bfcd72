"""Metadata: SQLAlchemy 2 models, the database handle and Alembic migrations.

SQLite (WAL) by default, PostgreSQL by URL; no SQL here is specific to either.
"""

from aidlc.core.meta.db import Database
from aidlc.core.meta.models import (
    AlertRecord,
    AuditEvent,
    AuditState,
    Base,
    ContractRecord,
    DatasetRecord,
    DatasetVersionRecord,
    IngestRecord,
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
    "AuditEvent",
    "AuditState",
    "Base",
    "ContractRecord",
    "Database",
    "DatasetRecord",
    "DatasetVersionRecord",
    "IngestRecord",
    "PrincipalRecord",
    "PrincipalRole",
    "StoredObject",
    "TokenRecord",
    "TreeHeadRecord",
    "WorkspaceKey",
    "WorkspaceSetting",
]
