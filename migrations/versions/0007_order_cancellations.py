"""Cancellations remembered: a cancel or refund received before the delivery still stops it

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "order_cancellations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=False),
        sa.Column("order_event_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["order_event_id"], ["order_events.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_order_cancellations_source_order", "order_cancellations", ["source", "order_id"], unique=False)
    # Cancellations received before this revision: whole orders and refunded items, with
    # the time each event happened (requests already made were cancelled back then).
    op.execute("""
        INSERT INTO order_cancellations (source, order_id, item_id, kind, cancelled_at, order_event_id)
        SELECT source, order_id, NULL, 'cancelled', occurred_at, id FROM order_events
        WHERE event_type = 'order.cancelled'
    """)


def downgrade():
    op.drop_index("ix_order_cancellations_source_order", table_name="order_cancellations")
    op.drop_table("order_cancellations")
