"""Testimonials put to work: moderation, public ids, withdrawal, erasure records

- testimonials: ``hidden`` becomes ``rejected``; ``featured``, ``public_id`` (the
  unguessable id of the share page and the public media URLs), ``moderated_at``,
  ``withdrawn_at`` (the customer took it back) and ``erased_at`` (the contact was erased).
- campaigns: ``auto_approve_min_rating`` (new testimonials rated at least this are
  approved on arrival; NULL: every one waits for moderation).
- contact_erasures: one row per erased contact, holding only a keyed hash of it.

Revision ID: 0010
Revises: 0009
"""

import secrets

from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMN, no batch copy: SQLite cannot drop and recreate tables that other
    # tables' foreign keys point at (campaigns, testimonials) while rows exist.
    op.add_column("testimonials", sa.Column("featured", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("testimonials", sa.Column("public_id", sa.String(length=32), nullable=True))
    op.add_column("testimonials", sa.Column("moderated_at", sa.DateTime(), nullable=True))
    op.add_column("testimonials", sa.Column("withdrawn_at", sa.DateTime(), nullable=True))
    op.add_column("testimonials", sa.Column("erased_at", sa.DateTime(), nullable=True))
    connection = op.get_bind()
    connection.execute(sa.text("UPDATE testimonials SET status = 'rejected' WHERE status = 'hidden'"))
    ids = [row[0] for row in connection.execute(sa.text("SELECT id FROM testimonials"))]
    for testimonial_id in ids:
        connection.execute(
            sa.text("UPDATE testimonials SET public_id = :p WHERE id = :id"),
            {"p": secrets.token_urlsafe(16), "id": testimonial_id},
        )
    if connection.dialect.name != "sqlite":  # SQLite cannot add NOT NULL later; the app always sets it
        op.alter_column("testimonials", "public_id", existing_type=sa.String(length=32), nullable=False)
    op.create_index("ix_testimonials_public_id", "testimonials", ["public_id"], unique=True)
    op.create_index("ix_testimonials_status_created", "testimonials", ["status", "created_at"], unique=False)
    op.add_column("campaigns", sa.Column("auto_approve_min_rating", sa.Integer(), nullable=True))

    op.create_table(
        "contact_erasures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=5), nullable=False),
        sa.Column("contact_hash", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        sa.Column("erased_by", sa.String(length=254), nullable=False),
        sa.Column("summary", sa.String(length=255), nullable=True),
        sa.Column("lifted_at", sa.DateTime(), nullable=True),
        sa.Column("lifted_by", sa.String(length=254), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_contact_erasures_hash", "contact_erasures", ["contact_hash"], unique=False)


def downgrade():
    op.drop_table("contact_erasures")
    op.drop_column("campaigns", "auto_approve_min_rating")
    op.drop_index("ix_testimonials_status_created", "testimonials")
    op.drop_index("ix_testimonials_public_id", "testimonials")
    for column in ("erased_at", "withdrawn_at", "moderated_at", "public_id", "featured"):
        op.drop_column("testimonials", column)
    op.execute("UPDATE testimonials SET status = 'hidden' WHERE status IN ('rejected', 'withdrawn', 'erased')")
