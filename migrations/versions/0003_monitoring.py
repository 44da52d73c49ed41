"""Monitoring: alert state

Revision ID: 0003
Revises: 0002
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # One row per SLO breach; at most one open row per kind (partial unique index).
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("notified_at", sa.DateTime(), nullable=True),
        sa.Column("notify_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "uq_alerts_open_kind",
        "alerts",
        ["kind"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_index("ix_alerts_opened", "alerts", ["opened_at"], unique=False)
    # Covering indexes for the monitoring home's per-period aggregates.
    op.create_index(
        "ix_requests_created_campaign_status",
        "testimonial_requests",
        ["created_at", "campaign_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_requests_sent_engagement",
        "testimonial_requests",
        ["sent_at", "campaign_id", "clicked_at", "submitted_at"],
        unique=False,
    )
    op.create_index(
        "ix_slot_sends_finished_outcome",
        "slot_sends",
        ["finished_at", "status", "provider", "channel", "slot"],
        unique=False,
    )
    # Requests Log (owned by the Requests Log work): status + campaign filters and their
    # capped counts read this index only, already in id order for "newest first".
    op.create_index("ix_requests_status_campaign", "testimonial_requests", ["status", "campaign_id"], unique=False)


def downgrade():
    op.drop_index("ix_requests_status_campaign", table_name="testimonial_requests")  # Requests Log
    op.drop_index("ix_slot_sends_finished_outcome", table_name="slot_sends")
    op.drop_index("ix_requests_sent_engagement", table_name="testimonial_requests")
    op.drop_index("ix_requests_created_campaign_status", table_name="testimonial_requests")
    op.drop_index("ix_alerts_opened", table_name="alerts")
    op.drop_index("uq_alerts_open_kind", table_name="alerts")
    op.drop_table("alerts")
