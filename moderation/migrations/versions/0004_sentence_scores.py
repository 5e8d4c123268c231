"""per-sentence scores of comments held by the model; merges the moderators and site-integration heads

Revision ID: 0004
Revises: 0002, 0003
Create Date: 2026-11-25 12:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = ("0002", "0003")
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sentence_scores", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_column("sentence_scores")
