"""Alembic environment of the read model. The URL and the metadata come from the caller
(``services.readmodel.store.alembic_config``), never from a file with credentials in it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url, "the caller sets sqlalchemy.url"
target_metadata = config.attributes.get("target_metadata")

engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
