"""Alembic environment: runs migrations against the URL set by moderation.migrate."""

from alembic import context

from moderation import models  # noqa: F401  (registers the tables)
from moderation.db import Base, make_engine

config = context.config


def run_migrations() -> None:
    """Run migrations online, in one transaction."""
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
