"""Drop-in compatibility: Coral signing secrets kept until they expire, labelled examples

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 21:00:00.000000
"""

from alembic import op
import sqlalchemy as sa

from moderation.db import UTCDateTime


revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coral_signing_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_coral_signing_secrets_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coral_signing_secrets")),
    )
    op.create_index(op.f("ix_coral_signing_secrets_site_id"), "coral_signing_secrets", ["site_id"])
    op.create_table(
        "labelled_examples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("client_token", sa.String(length=200), nullable=True),
        sa.Column("community_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_labelled_examples_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labelled_examples")),
    )
    op.create_index(
        "ix_labelled_examples_site_created", "labelled_examples", ["site_id", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_labelled_examples_site_created", table_name="labelled_examples")
    op.drop_table("labelled_examples")
    op.drop_index(op.f("ix_coral_signing_secrets_site_id"), table_name="coral_signing_secrets")
    op.drop_table("coral_signing_secrets")
