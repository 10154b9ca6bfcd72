"""Alembic environment: migrations run on the connection that `Database.upgrade` hands over."""

from alembic import context

from aidlc.core.meta.models import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("aidlc migrations run through aidlc.core.meta.Database.upgrade()")
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
