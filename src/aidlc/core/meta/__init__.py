"""Metadata: SQLAlchemy 2 models, the database handle and Alembic migrations.

SQLite (WAL) by default, PostgreSQL by URL; no SQL here is specific to either.
"""

from aidlc.core.meta.db import Database
from aidlc.core.meta.models import (
    AlertRecord,
    AliasEventRecord,
    ApprovalRecord,
    AuditEvent,
    AuditState,
    Base,
    ContractRecord,
    DatasetRecord,
    DatasetVersionRecord,
    IngestRecord,
    ModelAliasRecord,
    ModelTagRecord,
    ModelVersionRecord,
    PrincipalRecord,
    PrincipalRole,
    RegisteredModel,
    RunMetricRecord,
    RunRecord,
    StoredObject,
    TokenRecord,
    TreeHeadRecord,
    WorkspaceKey,
    WorkspaceSetting,
)

__all__ = [
    "AlertRecord",
    "AliasEventRecord",
    "ApprovalRecord",
    "AuditEvent",
    "AuditState",
    "Base",
    "ContractRecord",
    "Database",
    "DatasetRecord",
    "DatasetVersionRecord",
    "IngestRecord",
    "ModelAliasRecord",
    "ModelTagRecord",
    "ModelVersionRecord",
    "PrincipalRecord",
    "PrincipalRole",
    "RegisteredModel",
    "RunMetricRecord",
    "RunRecord",
    "StoredObject",
    "TokenRecord",
    "TreeHeadRecord",
    "WorkspaceKey",
    "WorkspaceSetting",
]
