"""DSA notices, statements of reasons and appeals

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 19:57:35.584437
"""

from alembic import op
import sqlalchemy as sa
import moderation.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dsa_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=False),
    sa.Column('law', sa.String(length=500), nullable=True),
    sa.Column('explanation', sa.Text(), nullable=False),
    sa.Column('reporter_name', sa.String(length=200), nullable=True),
    sa.Column('reporter_email', sa.String(length=254), nullable=True),
    sa.Column('good_faith', sa.Boolean(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=True),
    sa.Column('decision_ground', sa.String(length=500), nullable=True),
    sa.Column('decision_explanation', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('decided_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('history', sa.JSON(), nullable=False),
    sa.Column('created_at', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('AWAITING_REVIEW', 'UNDER_REVIEW', 'COMPLETED', 'VOID')", name=op.f('ck_dsa_notices_notice_state_known')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_dsa_notices_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsa_notices')),
    sa.UniqueConstraint('reference', name=op.f('uq_dsa_notices_reference'))
    )
    with op.batch_alter_table('dsa_notices', schema=None) as batch_op:
        batch_op.create_index('ix_dsa_notices_site_state', ['site_id', 'state', 'id'], unique=False)

    op.create_table('dsa_notice_comments',
    sa.Column('notice_id', sa.Integer(), nullable=False),
    sa.Column('comment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_dsa_notice_comments_comment_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notice_id'], ['dsa_notices.id'], name=op.f('fk_dsa_notice_comments_notice_id_dsa_notices'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('notice_id', 'comment_id', name=op.f('pk_dsa_notice_comments'))
    )
    with op.batch_alter_table('dsa_notice_comments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dsa_notice_comments_comment_id'), ['comment_id'], unique=False)

    op.create_table('dsa_statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=40), nullable=False),
    sa.Column('puid', sa.String(length=100), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('author_id', sa.String(length=200), nullable=False),
    sa.Column('comment_id', sa.Integer(), nullable=True),
    sa.Column('sanction_id', sa.Integer(), nullable=True),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.Column('decision_visibility', sa.String(length=64), nullable=True),
    sa.Column('decision_account', sa.String(length=64), nullable=True),
    sa.Column('decision_ground', sa.String(length=64), nullable=False),
    sa.Column('illegal_content_legal_ground', sa.String(length=500), nullable=True),
    sa.Column('illegal_content_explanation', sa.String(length=2000), nullable=True),
    sa.Column('incompatible_content_ground', sa.String(length=500), nullable=True),
    sa.Column('incompatible_content_explanation', sa.String(length=2000), nullable=True),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('decision_facts', sa.String(length=5000), nullable=False),
    sa.Column('automated_detection', sa.Boolean(), nullable=False),
    sa.Column('automated_decision', sa.String(length=40), nullable=False),
    sa.Column('source_type', sa.String(length=40), nullable=False),
    sa.Column('content_language', sa.String(length=8), nullable=True),
    sa.Column('content_date', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('application_date', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('end_date', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('redress', sa.String(length=1000), nullable=False),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('created_at', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reversed_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('transparency_id', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['comment_id'], ['comments.id'], name=op.f('fk_dsa_statements_comment_id_comments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notice_id'], ['dsa_notices.id'], name=op.f('fk_dsa_statements_notice_id_dsa_notices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['sanction_id'], ['author_sanctions.id'], name=op.f('fk_dsa_statements_sanction_id_author_sanctions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_dsa_statements_site_id_sites'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsa_statements')),
    sa.UniqueConstraint('public_id', name=op.f('uq_dsa_statements_public_id')),
    sa.UniqueConstraint('puid', name=op.f('uq_dsa_statements_puid'))
    )
    with op.batch_alter_table('dsa_statements', schema=None) as batch_op:
        batch_op.create_index('ix_dsa_statements_comment', ['comment_id'], unique=False)
        batch_op.create_index('ix_dsa_statements_site_author', ['site_id', 'author_id'], unique=False)
        batch_op.create_index('ix_dsa_statements_site_created', ['site_id', 'created_at'], unique=False)

    op.create_table('dsa_appeals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.Integer(), nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('outcome_reasons', sa.Text(), nullable=True),
    sa.Column('decided_by', sa.String(length=254), nullable=True),
    sa.Column('decided_at', moderation.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', moderation.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("state IN ('OPEN', 'DECIDED')", name=op.f('ck_dsa_appeals_appeal_state_known')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_dsa_appeals_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['statement_id'], ['dsa_statements.id'], name=op.f('fk_dsa_appeals_statement_id_dsa_statements'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dsa_appeals')),
    sa.UniqueConstraint('public_id', name=op.f('uq_dsa_appeals_public_id')),
    sa.UniqueConstraint('statement_id', name=op.f('uq_dsa_appeals_statement_id'))
    )
    with op.batch_alter_table('dsa_appeals', schema=None) as batch_op:
        batch_op.create_index('ix_dsa_appeals_site_state', ['site_id', 'state', 'id'], unique=False)

    # ### end Alembic commands ###


def downgrade() -> None:
    with op.batch_alter_table('dsa_appeals', schema=None) as batch_op:
        batch_op.drop_index('ix_dsa_appeals_site_state')

    op.drop_table('dsa_appeals')
    with op.batch_alter_table('dsa_statements', schema=None) as batch_op:
        batch_op.drop_index('ix_dsa_statements_site_created')
        batch_op.drop_index('ix_dsa_statements_site_author')
        batch_op.drop_index('ix_dsa_statements_comment')

    op.drop_table('dsa_statements')
    with op.batch_alter_table('dsa_notice_comments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dsa_notice_comments_comment_id'))

    op.drop_table('dsa_notice_comments')
    with op.batch_alter_table('dsa_notices', schema=None) as batch_op:
        batch_op.drop_index('ix_dsa_notices_site_state')

    op.drop_table('dsa_notices')
    # ### end Alembic commands ###
