"""Shop settings saved on the Settings screen (one row; NULL = the environment's value)

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "shop_settings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("shop_name", sa.String(80)),
        sa.Column("brand_color", sa.String(7)),
        sa.Column("email_from_name", sa.String(80)),
        sa.Column("email_from", sa.String(254)),
        sa.Column("reply_to", sa.String(254)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("public_base_url", sa.String(255)),
        sa.Column("quiet_hours", sa.String(11)),
        sa.Column("consent_text", sa.Text()),
        sa.Column("logo", sa.LargeBinary()),
        sa.Column("logo_type", sa.String(16)),
        sa.Column("logo_width", sa.Integer()),
        sa.Column("logo_height", sa.Integer()),
        sa.Column("updated_at", sa.DateTime()),
        sa.Column("updated_by", sa.String(254)),
    )
    # The one row exists from the start: saving is an UPDATE that bumps the version, never
    # a race between two first saves.
    op.bulk_insert(table, [{"id": 1, "version": 1}])


def downgrade():
    op.drop_table("shop_settings")
