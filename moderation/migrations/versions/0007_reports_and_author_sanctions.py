"""Reader reports and author sanctions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 19:46:02.111721
"""

from alembic import op
import sqlalchemy as sa
import moderation.db


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('author_sanctions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('ends_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=254), nullable=False),
    sa.Column('acknowledged_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=254), nullable=True),
    sa.Column('lift_reason', sa.String(length=1000), nullable=True),
    sa.CheckConstraint("kind IN ('warn', 'suspend', 'ban', 'premoderate')", name=op.f('ck_author_sanctions_sanction_kind_known')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_author_sanctions_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_author_sanctions')),
    sa.UniqueConstraint('public_id', name=op.f('uq_author_sanctions_public_id'))
    )
    with op.batch_alter_table('author_sanctions', schema=None) as batch_op:
        batch_op.create_index('ix_author_sanctions_site_author', ['site_id', 'author_id', 'lifted_at'], unique=False)

    op.create_table('reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('comment_id', sa.Integer(), nullable=False),
    sa.Column('reporter_id', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('text', sa.String(length=1000), nullable=True),
    sa.Column('created_at', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('closed_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolution', sa.String(length=16), nullable=True),
    sa.Column('closed_by', sa.String(length=254), nullable=True),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_reports_comment_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_reports_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports')),
    sa.UniqueConstraint('comment_id', 'reporter_id', name=op.f('uq_reports_comment_id')),
    sa.UniqueConstraint('public_id', name=op.f('uq_reports_public_id'))
    )
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.create_index('ix_reports_comment_closed', ['comment_id', 'closed_at'], unique=False)
        batch_op.create_index('ix_reports_site_open', ['site_id', 'closed_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('reports', schema=None) as batch_op:
        batch_op.drop_index('ix_reports_site_open')
        batch_op.drop_index('ix_reports_comment_closed')

    op.drop_table('reports')
    with op.batch_alter_table('author_sanctions', schema=None) as batch_op:
        batch_op.drop_index('ix_author_sanctions_site_author')

    op.drop_table('author_sanctions')
