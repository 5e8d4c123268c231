"""Coral external moderation phase: a site's signing secret and whether its comments are kept

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 21:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("coral_signing_secret", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("coral_store_comments", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        batch_op.drop_column("coral_store_comments")
        batch_op.drop_column("coral_signing_secret")
