"""The customer's page: testimonial details and video processing, resumable uploads,
campaign prompts, postponing a request

Revision ID: 0006
Revises: 0005
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("testimonials", schema=None) as batch_op:
        # A storage key (may hold a folder) rather than a bare file name; the old names
        # are keys at the top of the local folder, so they keep working unchanged.
        batch_op.alter_column(
            "video_filename",
            new_column_name="video_key",
            existing_type=sa.String(length=80),
            type_=sa.String(length=255),
        )
        batch_op.alter_column("video_content_type", existing_type=sa.String(length=40), type_=sa.String(length=80))
        batch_op.add_column(sa.Column("rating", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("display_name", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("consent_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("consent_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("consent_ip", sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column("video_status", sa.String(length=10), nullable=False, server_default="none"))
        batch_op.add_column(sa.Column("video_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("video_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("video_next_attempt_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("video_claimed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("video_processed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("playable_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("playable_content_type", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("poster_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("video_duration_seconds", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("video_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("video_height", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("video_rotation", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("video_codec", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("audio_codec", sa.String(length=40), nullable=True))
        batch_op.create_check_constraint("ck_testimonial_rating", "rating IS NULL OR (rating >= 1 AND rating <= 5)")
        batch_op.create_check_constraint(
            "ck_testimonial_video_status", "video_status IN ('none', 'pending', 'processing', 'ready', 'failed')"
        )
        batch_op.create_index("ix_testimonials_video_due", ["video_status", "video_next_attempt_at"], unique=False)
    # Videos stored before this revision get probed and made playable by the new job.
    op.execute("UPDATE testimonials SET video_status = 'pending' WHERE video_key IS NOT NULL")

    # Not batch: plain ADD COLUMN keeps the daily_stats triggers on this table (SQLite
    # would drop them with a table rebuild).
    op.add_column("testimonial_requests", sa.Column("postponed_at", sa.DateTime(), nullable=True))

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_heading", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("prompt_questions", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("consent_text", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("thank_you_text", sa.Text(), nullable=True))

    op.create_table(
        "video_uploads",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=80), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("testimonial_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["request_id"], ["testimonial_requests.id"]),
        sa.ForeignKeyConstraint(["testimonial_id"], ["testimonials.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_video_uploads_request_id", "video_uploads", ["request_id"], unique=False)
    op.create_index("ix_video_uploads_updated", "video_uploads", ["updated_at"], unique=False)


def downgrade():
    op.drop_index("ix_video_uploads_updated", table_name="video_uploads")
    op.drop_index("ix_video_uploads_request_id", table_name="video_uploads")
    op.drop_table("video_uploads")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("thank_you_text")
        batch_op.drop_column("consent_text")
        batch_op.drop_column("prompt_questions")
        batch_op.drop_column("prompt_heading")
    op.drop_column("testimonial_requests", "postponed_at")
    with op.batch_alter_table("testimonials", schema=None) as batch_op:
        batch_op.drop_index("ix_testimonials_video_due")
        batch_op.drop_constraint("ck_testimonial_video_status", type_="check")
        batch_op.drop_constraint("ck_testimonial_rating", type_="check")
        for column in (
            "audio_codec",
            "video_codec",
            "video_rotation",
            "video_height",
            "video_width",
            "video_duration_seconds",
            "poster_key",
            "playable_content_type",
            "playable_key",
            "video_processed_at",
            "video_claimed_at",
            "video_next_attempt_at",
            "video_attempts",
            "video_error",
            "video_status",
            "consent_ip",
            "consent_at",
            "consent_text",
            "display_name",
            "rating",
        ):
            batch_op.drop_column(column)
        batch_op.alter_column("video_content_type", existing_type=sa.String(length=80), type_=sa.String(length=40))
        batch_op.alter_column(
            "video_key",
            new_column_name="video_filename",
            existing_type=sa.String(length=255),
            type_=sa.String(length=80),
        )
