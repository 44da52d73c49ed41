"""The video processing job: probe each submitted video, make its poster and, when the
original does not play in every browser, an H.264/AAC MP4 that does.

Recorded in the database (``Testimonial.video_*``), claimed with a conditional UPDATE so
two app processes never work on the same video, retried with backoff on errors of the
storage or the tools (``VIDEO_PROCESS_ATTEMPTS``), and marked ``failed`` at once, with the
reason, for a file that is not a decodable video (the merchant still sees the text).
A claim older than ``VIDEO_PROCESS_LEASE_SECONDS`` belongs to a process that died
mid-way: the video goes back to ``pending`` (that attempt counts).

Flushes and commits per video: each video's result is its own transaction, so one slow
or broken file never holds back the others' results.
"""

import logging
import os
import tempfile
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import and_, or_, select, update

from app.extensions import db
from app.storage import StorageError, get_storage
from app.testimonials import video
from app.testimonials.models import Testimonial

log = logging.getLogger("app.testimonials")

RETRY_BASE = timedelta(minutes=1)
SUFFIXES = {"mp4": ".mp4", "mov": ".mov", "webm": ".webm"}


def due_videos(now, lease_seconds, limit):
    stale = now - timedelta(seconds=lease_seconds)
    return db.session.scalars(
        select(Testimonial.id)
        .where(
            Testimonial.video_key.is_not(None),
            or_(
                and_(
                    Testimonial.video_status == "pending",
                    or_(Testimonial.video_next_attempt_at.is_(None), Testimonial.video_next_attempt_at <= now),
                ),
                and_(Testimonial.video_status == "processing", Testimonial.video_claimed_at < stale),
            ),
        )
        .order_by(Testimonial.id)
        .limit(limit)
    ).all()


def claim(testimonial_id, now, lease_seconds):
    """Take one video for this process (True), or learn another took it first (False)."""
    stale = now - timedelta(seconds=lease_seconds)
    result = db.session.execute(
        update(Testimonial)
        .where(
            Testimonial.id == testimonial_id,
            or_(
                Testimonial.video_status == "pending",
                and_(Testimonial.video_status == "processing", Testimonial.video_claimed_at < stale),
            ),
        )
        .values(video_status="processing", video_claimed_at=now, video_attempts=Testimonial.video_attempts + 1)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def process_due_videos(now, *, limit=10, time_budget_seconds=None):
    """Process the videos that are due; returns {"ready": n, "failed": n, "retry": n}."""
    config = current_app.config
    lease = config["VIDEO_PROCESS_LEASE_SECONDS"]
    budget = time_budget_seconds if time_budget_seconds is not None else lease / 2
    started = time.monotonic()
    counts = {"ready": 0, "failed": 0, "retry": 0}
    for testimonial_id in due_videos(now, lease, limit):
        if time.monotonic() - started > budget:
            break  # the rest waits for the next run, well inside its lease
        if not claim(testimonial_id, now, lease):
            db.session.rollback()
            continue
        db.session.commit()  # the claim is visible to other processes before the work
        testimonial = db.session.get(Testimonial, testimonial_id)
        outcome = process_one(testimonial, now, max_attempts=config["VIDEO_PROCESS_ATTEMPTS"])
        db.session.commit()
        counts[outcome] += 1
    return counts


def process_one(testimonial, now, *, max_attempts):
    storage = get_storage()
    try:
        results = make_versions(storage, testimonial.video_key)
    except video.NotAVideo as exc:
        return finish_failed(testimonial, now, str(exc))
    except (StorageError, OSError, video.av.error.FFmpegError) as exc:
        return retry_or_fail(testimonial, now, f"{type(exc).__name__}: {exc}", max_attempts)
    except Exception as exc:  # noqa: BLE001 - a bug or an odd file must not stop the job
        log.exception("testimonial=%s video processing failed unexpectedly", testimonial.id)
        return retry_or_fail(testimonial, now, f"unexpected error: {type(exc).__name__}: {exc}", max_attempts)
    info, playable_key, playable_type, poster_key = results
    testimonial.video_status = "ready"
    testimonial.video_error = None
    testimonial.video_next_attempt_at = None
    testimonial.video_claimed_at = None
    testimonial.video_processed_at = now
    testimonial.video_duration_seconds = round(info.duration or info.measured_duration, 3)
    testimonial.video_width, testimonial.video_height = info.width, info.height
    testimonial.video_rotation = info.rotation
    testimonial.video_codec, testimonial.audio_codec = info.video_codec, info.audio_codec
    testimonial.playable_key, testimonial.playable_content_type = playable_key, playable_type
    testimonial.poster_key = poster_key
    db.session.flush()
    log.info(
        "testimonial=%s video ready: %s %sx%s %.1fs%s",
        testimonial.id,
        info.video_codec,
        info.width,
        info.height,
        testimonial.video_duration_seconds,
        "" if playable_key == testimonial.video_key else " (made an H.264 copy)",
    )
    return "ready"


def make_versions(storage, key):
    """Probe the original and store its poster and (when needed) its playable copy."""
    stem = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    with (
        storage.local_path(key, suffix=SUFFIXES.get(key.rsplit(".", 1)[-1], "")) as original,
        tempfile.TemporaryDirectory(prefix="video-") as work,
    ):
        info = video.probe(original)
        if info.plays_everywhere:
            playable_path, playable_key = original, key
        else:
            playable_path = os.path.join(work, "playable.mp4")
            video.make_playable(original, playable_path, info)
            playable_key = f"videos/{stem}-playable.mp4"
        poster_path = os.path.join(work, "poster.jpg")
        video.make_poster(playable_path, poster_path, info)
        if playable_key != key:
            storage.save_file(playable_key, playable_path, "video/mp4")
        poster_key = f"posters/{stem}.jpg"
        storage.save_file(poster_key, poster_path, "image/jpeg")
    return info, playable_key, "video/mp4", poster_key


def finish_failed(testimonial, now, reason):
    testimonial.video_status = "failed"
    testimonial.video_error = reason
    testimonial.video_next_attempt_at = None
    testimonial.video_claimed_at = None
    testimonial.video_processed_at = now
    db.session.flush()
    log.info("testimonial=%s video failed: %s", testimonial.id, reason)
    return "failed"


def retry_or_fail(testimonial, now, reason, max_attempts):
    if testimonial.video_attempts >= max_attempts:
        return finish_failed(testimonial, now, f"{reason} (gave up after {testimonial.video_attempts} attempts)")
    testimonial.video_status = "pending"
    testimonial.video_error = reason
    testimonial.video_claimed_at = None
    testimonial.video_next_attempt_at = now + RETRY_BASE * 2 ** (testimonial.video_attempts - 1)
    db.session.flush()
    log.info(
        "testimonial=%s video attempt %s failed, next at %s: %s",
        testimonial.id,
        testimonial.video_attempts,
        testimonial.video_next_attempt_at,
        reason,
    )
    return "retry"
