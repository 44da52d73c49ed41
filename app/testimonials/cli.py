"""``flask testimonials list|show|process`` and ``approve|reject|feature|unfeature ID…``."""

import os

import click
from flask.cli import AppGroup

from app.cli_utils import ID, emit, fail
from app.clock import now as clock_now
from app.extensions import db
from app.testimonials.export import export_chunks
from app.testimonials.models import VIDEO_STATUSES, Testimonial
from app.testimonials.moderation import ACTION_WORDS, STATUSES, TABS, apply_action
from app.testimonials.processing import process_due_videos
from app.testimonials.services import TestimonialFilter, testimonials_query
from app.testimonials.uploads import delete_expired_uploads

testimonials_cli = AppGroup("testimonials", help="Testimonials customers sent: list, moderate, process videos.")


def moderation_command(action):
    @click.argument("ids", nargs=-1, required=True, type=ID)
    @click.option("--json", "as_json", is_flag=True)
    def command(ids, as_json):
        done, skipped = apply_action(action, list(ids), clock_now())
        db.session.commit()
        result = {"action": action, "done": done, "not_done": skipped}
        emit(
            result,
            as_json,
            lambda r: (
                f"{ACTION_WORDS[action]}: {', '.join(map(str, done)) or 'none'}"
                + (
                    f"\nnot {ACTION_WORDS[action]} (no such testimonial, withdrawn or "
                    f"erased): {', '.join(map(str, skipped))}"
                    if skipped
                    else ""
                )
            ),
        )
        if skipped and not done:
            raise SystemExit(1)

    command.__doc__ = {
        "approve": "Approve testimonials: they become public (when the customer consented).",
        "reject": "Reject testimonials: they are never shown.",
        "feature": "Feature testimonials (approves them too): shown first on the wall and in the feed.",
        "unfeature": "Stop featuring testimonials.",
    }[action]
    return command


for _action in ("approve", "reject", "feature", "unfeature"):
    testimonials_cli.command(_action)(moderation_command(_action))


@testimonials_cli.command("export")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="The ZIP file to write (replaced if it exists).",
)
@click.option("--status", type=click.Choice(TABS), help="Only testimonials in this status (default: all).")
@click.option("--product", help="Only this product id.")
@click.option("--json", "as_json", is_flag=True)
def export_command(out, status, product, as_json):
    """Write a ZIP: every video (original and playable), poster, testimonials.json and .csv."""
    count, chunks = export_chunks(TestimonialFilter(status=status, product=product))
    written = 0
    partial = out + ".partial"
    with open(partial, "wb") as target:
        for chunk in chunks:
            target.write(chunk)
            written += len(chunk)
    os.replace(partial, out)
    emit(
        {"out": out, "testimonials": count, "bytes": written},
        as_json,
        lambda r: f"{r['testimonials']} testimonials, {r['bytes']} bytes → {r['out']}",
    )


def human_row(d):
    video = f"video {d['video_status']}" + (
        f" {d['video_duration_seconds']:.1f}s" if d["video_duration_seconds"] else ""
    )
    stars = f" {d['rating']}★" if d["rating"] else ""
    return (
        f"#{d['id']} request {d['request_id']} {d['status']:<8} {video if d['has_video'] else 'text only'}{stars}"
        f"  {d['display_name'] or ''}  {d['created_at']}"
    )


@testimonials_cli.command("list")
@click.option("--status", type=click.Choice(STATUSES))
@click.option("--video-status", type=click.Choice(VIDEO_STATUSES))
@click.option("--limit", type=click.IntRange(1, 100000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_command(status, video_status, limit, as_json):
    """Testimonials, newest first."""
    query = testimonials_query(TestimonialFilter(status=status))
    if video_status:
        query = query.where(Testimonial.video_status == video_status)
    rows = [t.to_dict() for t in db.session.scalars(query.limit(limit)).unique()]
    emit(rows, as_json, lambda rows: "\n".join(human_row(r) for r in rows) or "no testimonials")


@testimonials_cli.command("show")
@click.argument("testimonial_id", type=ID)
@click.option("--json", "as_json", is_flag=True)
def show_command(testimonial_id, as_json):
    """One testimonial with its video's details (and why processing failed, if it did)."""
    testimonial = db.session.get(Testimonial, testimonial_id)
    if testimonial is None:
        fail(f"there is no testimonial {testimonial_id}")
    data = testimonial.to_dict()

    def human(d):
        lines = [human_row(d)]
        for key in (
            "text",
            "consent_text",
            "consent_at",
            "video_content_type",
            "video_size",
            "video_codec",
            "audio_codec",
            "video_width",
            "video_height",
            "video_rotation",
            "playable_content_type",
            "video_attempts",
            "video_error",
        ):
            if d.get(key) not in (None, ""):
                lines.append(f"  {key}: {d[key]}")
        return "\n".join(lines)

    emit(data, as_json, human)


@testimonials_cli.command("process")
@click.option("--json", "as_json", is_flag=True)
def process_command(as_json):
    """Process the videos that are due now (what the scheduler's job does each minute)."""
    current = clock_now()
    counts = process_due_videos(current)
    counts["uploads_deleted"] = delete_expired_uploads(current)
    db.session.commit()
    emit(counts, as_json, lambda c: ", ".join(f"{k}: {v}" for k, v in c.items()))
