"""moderators, their sites and API tokens; indexes for the moderation queues

Revision ID: 0002
Revises: 0001
"""

from alembic import op
import sqlalchemy as sa
import moderation.db


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

QUEUE_SCORE = "coalesce(top_score, -1.0)"


def upgrade() -> None:
    op.create_table(
        "moderators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", moderation.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", moderation.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderators")),
        sa.UniqueConstraint("email", name=op.f("uq_moderators_email")),
    )
    op.create_table(
        "moderator_sites",
        sa.Column("moderator_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["moderator_id"],
            ["moderators.id"],
            name=op.f("fk_moderator_sites_moderator_id_moderators"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["site_id"],
            ["sites.id"],
            name=op.f("fk_moderator_sites_site_id_sites"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("moderator_id", "site_id", name=op.f("pk_moderator_sites")),
    )
    op.create_index(
        op.f("ix_moderator_sites_site_id"), "moderator_sites", ["site_id"], unique=False
    )
    op.create_table(
        "moderator_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("moderator_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", moderation.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", moderation.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["moderator_id"],
            ["moderators.id"],
            name=op.f("fk_moderator_tokens_moderator_id_moderators"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_moderator_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_moderator_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_moderator_tokens_moderator_id"), "moderator_tokens", ["moderator_id"], unique=False
    )
    # The queues page through one status (of one site, or of all sites) in arrival order
    # (id) or highest score first; the score expression is the one the queries use.
    op.create_index("ix_comments_status_id", "comments", ["status", "id"])
    op.create_index("ix_comments_site_status_id", "comments", ["site_id", "status", "id"])
    op.create_index(
        "ix_comments_status_score", "comments", ["status", sa.text(QUEUE_SCORE), "id"]
    )
    op.create_index(
        "ix_comments_site_status_score",
        "comments",
        ["site_id", "status", sa.text(QUEUE_SCORE), "id"],
    )
    # Each card shows its author's record (approved and rejected counts) from this index.
    op.create_index(
        "ix_comments_site_author_status", "comments", ["site_id", "author_id", "status"]
    )


def downgrade() -> None:
    for name in (
        "ix_comments_site_author_status",
        "ix_comments_site_status_score",
        "ix_comments_status_score",
        "ix_comments_site_status_id",
        "ix_comments_status_id",
    ):
        op.drop_index(name, table_name="comments")
    op.drop_index(op.f("ix_moderator_tokens_moderator_id"), table_name="moderator_tokens")
    op.drop_table("moderator_tokens")
    op.drop_index(op.f("ix_moderator_sites_site_id"), table_name="moderator_sites")
    op.drop_table("moderator_sites")
    op.drop_table("moderators")
