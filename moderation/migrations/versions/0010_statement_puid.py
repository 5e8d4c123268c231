"""Statements of reasons: a PUID of their own, apart from the statement's page id

Until now a statement's PUID (published by the Transparency Database) was its public_id,
the id of its page. Each statement gets its own random PUID; one already submitted keeps
the PUID the database holds and gets a new public_id instead, so that no published PUID
names a statement's page either way.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 10:00:00.000000
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, submitted_at FROM dsa_statements WHERE puid = public_id ORDER BY id")
    ).all()
    for statement_id, submitted_at in rows:
        if submitted_at is None:
            bind.execute(
                sa.text("UPDATE dsa_statements SET puid = :puid WHERE id = :id"),
                {"puid": secrets.token_hex(16), "id": statement_id},
            )
        else:
            bind.execute(
                sa.text("UPDATE dsa_statements SET public_id = :public_id WHERE id = :id"),
                {"public_id": "sor_" + secrets.token_urlsafe(16), "id": statement_id},
            )


def downgrade() -> None:
    # The random values stay: nothing ties them back to what they replaced.
    pass
