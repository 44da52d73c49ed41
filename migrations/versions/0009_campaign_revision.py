"""Campaigns: a revision number, changed on every change (the intake caches their rules)

The intake reads the active campaigns' rules once per process and compares one cheap
fingerprint of the table (count, highest id, sum of revisions) on every webhook; any
change of a campaign gives it a new random revision, in whichever process it happens.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))


def downgrade():
    # Not in batch mode: rebuilding campaigns on SQLite fails on the tables referring to it
    # (SQLite 3.35+ drops a column in place).
    op.drop_column("campaigns", "revision")
