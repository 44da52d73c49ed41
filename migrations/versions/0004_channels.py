"""Real channels: send windows, Shopify ids, provider event fields

Revision ID: 0004
Revises: 0003
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    # -- Shopify order source and send windows (issue 4) ----------------------------------
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topic", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("source_event_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("shop_domain", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_order_events_source_event_id"), ["source_event_id"], unique=False)
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_send_window", sa.String(length=11), nullable=True))
        batch_op.add_column(sa.Column("sms_send_window", sa.String(length=11), nullable=True))
    # Existing campaigns get the SMS default too: no texts at night after an upgrade.
    op.execute("UPDATE campaigns SET sms_send_window = '09:00-20:00'")
    # -- end Shopify order source and send windows ----------------------------------------
    # -- provider event webhooks and opt-outs (issue 4, app/events) -----------------------
    op.create_table(
        "contact_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=5), nullable=False),
        sa.Column("contact", sa.String(length=254), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("dedupe_key", sa.String(length=255), nullable=True),
        sa.Column("applied", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    op.create_index("ix_contact_events_contact", "contact_events", ["channel", "contact", "occurred_at"], unique=False)
    # -- end provider event webhooks and opt-outs ------------------------------------------


def downgrade():
    # -- provider event webhooks and opt-outs (issue 4, app/events) -----------------------
    op.drop_index("ix_contact_events_contact", table_name="contact_events")
    op.drop_table("contact_events")
    # -- end provider event webhooks and opt-outs ------------------------------------------
    # -- Shopify order source and send windows (issue 4) ----------------------------------
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("sms_send_window")
        batch_op.drop_column("email_send_window")
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_events_source_event_id"))
        batch_op.drop_column("shop_domain")
        batch_op.drop_column("source_event_id")
        batch_op.drop_column("topic")
    # -- end Shopify order source and send windows ----------------------------------------
