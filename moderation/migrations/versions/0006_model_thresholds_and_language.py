"""Sites keep only their own bands (the model's thresholds fill the rest); comments' language

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 17:00:00.000000
"""

import json

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Every site was created with these bands written into its policy; they were the defaults
# then, not a site's choice, so they give way to the thresholds the model records.
OLD_DEFAULTS = {
    "toxicity": 0.5,
    "severe_toxicity": 0.4,
    "obscene": 0.6,
    "threat": 0.4,
    "insult": 0.5,
    "identity_attack": 0.4,
}


def upgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=16), nullable=True))
    sites = sa.table("sites", sa.column("id", sa.Integer), sa.column("policy", sa.JSON))
    connection = op.get_bind()
    for site_id, policy in connection.execute(sa.select(sites.c.id, sites.c.policy)).all():
        policy = json.loads(policy) if isinstance(policy, str) else dict(policy or {})
        labels = policy.get("labels") or {}
        untouched = {k: {"hold_at": v, "reject_at": None} for k, v in OLD_DEFAULTS.items()}
        if labels == untouched:
            policy["labels"] = {}
            connection.execute(sites.update().where(sites.c.id == site_id).values(policy=policy))


def downgrade() -> None:
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_column("language")
