"""Submitted videos become ones that play everywhere: the processing job (PyAV) probes
each, makes a poster, and an H.264/AAC MP4 with its index first when the original is not
one; a file that is not a video is marked so and the text stays. Test videos are made
with PyAV at test time (tests/media.py). Also the S3 storage path end to end, against a
local S3-compatible server."""

import io
import os

import av
import pytest
from sqlalchemy import select

from app.extensions import db
from app.storage import get_storage
from app.testimonials.models import Testimonial
from app.testimonials.processing import process_due_videos
from app.testimonials.video import index_first
from tests import media
from tests.conftest import AuthActions
from tests.factories import request_row, sent_request, submit_testimonial
from tests.s3_server import s3_bucket, s3_server  # noqa: F401  (fixtures)
from tests.tus_helpers import Tus


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {
        "chrome_webm": media.webm_without_duration(folder / "chrome.webm", seconds=3).read_bytes(),
        "iphone_hevc": media.hevc_mov(folder / "iphone.mov", seconds=2, rotation=90).read_bytes(),
        "h264_mp4": media.h264_mp4(folder / "ready.mp4", seconds=2).read_bytes(),
    }


@pytest.fixture
def token(client, clock):
    return request_row(sent_request(client, clock)).token


def send_by_upload(client, token, data, filetype, text="", **form):
    """The page's path with JavaScript: the video by tus, then the form with its id."""
    upload_id = Tus(client, token).upload(data, filetype=filetype)
    response = submit_testimonial(client, token, text=text, upload_id=upload_id, **form)
    assert response.status_code == 200, response.get_data(as_text=True)
    return upload_id


def the_testimonial():
    db.session.expire_all()
    return db.session.scalars(select(Testimonial)).one()


def read_back(key, tmp_path, name):
    path = tmp_path / name
    with get_storage().open(key) as f:
        path.write_bytes(f.read())
    return path


def assert_plays_everywhere(path, seconds):
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4")
        assert container.duration / 1e6 == pytest.approx(seconds, abs=0.25)
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
        assert container.streams.audio[0].codec_context.name == "aac"
        # Seekable: jump three quarters in and decode a picture there (a key frame each second).
        stream = container.streams.video[0]
        container.seek(int(seconds * 0.75 / stream.time_base), stream=stream)
        frame = next(container.decode(stream))
        assert 1.0 <= frame.time <= seconds * 0.75
    assert index_first(path), "the index (moov) must come first: playback starts before the download ends"


def assert_jpeg(key, tmp_path):
    data = read_back(key, tmp_path, "poster.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff" and len(data) > 500
    with av.open(io.BytesIO(data)) as picture:
        frame = next(picture.decode(video=0))
        return frame.width, frame.height


def test_a_chrome_webm_without_duration_gets_a_seekable_h264_copy_and_a_poster(
    app, client, token, clock, clips, tmp_path
):
    original = clips["chrome_webm"]
    with av.open(io.BytesIO(original)) as probe:
        assert probe.duration is None  # as Chrome records it: no duration, cannot be seeked
    send_by_upload(client, token, original, "video/webm;codecs=vp8,opus", text="Love it")
    pending = the_testimonial()
    assert (pending.video_status, pending.video_content_type, pending.video_size) == (
        "pending",
        "video/webm",
        len(original),
    )

    assert process_due_videos(clock()) == {"ready": 1, "failed": 0, "retry": 0}

    done = the_testimonial()
    assert (done.video_status, done.video_error, done.video_attempts) == ("ready", None, 1)
    assert done.video_duration_seconds == pytest.approx(3.0, abs=0.1)
    assert (done.video_codec, done.audio_codec, done.video_width, done.video_height) == ("vp8", "opus", 160, 120)
    assert done.playable_key != done.video_key and done.playable_content_type == "video/mp4"
    assert_plays_everywhere(read_back(done.playable_key, tmp_path, "playable.mp4"), 3.0)
    assert assert_jpeg(done.poster_key, tmp_path) == (160, 120)
    assert read_back(done.video_key, tmp_path, "original.webm").read_bytes() == original  # kept as sent
    assert process_due_videos(clock()) == {"ready": 0, "failed": 0, "retry": 0}  # done once


def test_an_iphone_hevc_video_is_turned_into_h264_keeping_its_rotation(app, client, token, clock, clips, tmp_path):
    send_by_upload(client, token, clips["iphone_hevc"], "video/quicktime")

    process_due_videos(clock())

    done = the_testimonial()
    assert (done.video_status, done.video_codec, done.video_rotation) == ("ready", "hevc", 90)
    assert done.video_content_type == "video/quicktime"
    playable = read_back(done.playable_key, tmp_path, "playable.mp4")
    assert_plays_everywhere(playable, 2.0)
    with av.open(str(playable)) as container:
        assert next(container.decode(video=0)).rotation == 90  # players turn it as the phone did
    assert assert_jpeg(done.poster_key, tmp_path) == (120, 160)  # the poster is upright


def test_an_mp4_that_already_plays_everywhere_is_not_copied(app, client, token, clock, clips, tmp_path):
    send_by_upload(client, token, clips["h264_mp4"], "video/mp4")
    process_due_videos(clock())
    done = the_testimonial()
    assert done.video_status == "ready"
    assert done.playable_key == done.video_key
    assert sorted(os.listdir(os.path.join(app.config["UPLOAD_DIR"], "videos"))) == [done.video_key.split("/")[1]]


def test_the_form_without_javascript_gets_the_same_processing(app, client, token, clock, clips):
    response = submit_testimonial(
        client, token, text="", video=(io.BytesIO(clips["chrome_webm"]), "clip.webm", "video/webm")
    )
    assert response.status_code == 200
    process_due_videos(clock())
    assert the_testimonial().video_status == "ready"


def test_a_text_file_renamed_mp4_is_refused_and_changes_nothing(app, client, token):
    text = b"Dear shop, this is not a video at all.\n" * 20
    upload_id = Tus(client, token).upload(text, filetype="video/mp4", filename="review.mp4")

    by_upload = submit_testimonial(client, token, text="Nice", upload_id=upload_id)
    by_form = submit_testimonial(client, token, text="Nice", video=(io.BytesIO(text), "review.mp4", "video/mp4"))

    for response in (by_upload, by_form):
        assert response.status_code == 400
        assert "must be an MP4, WebM or QuickTime" in response.get_data(as_text=True)
        assert "Nice" in response.get_data(as_text=True)  # the customer's words come back
    assert db.session.scalars(select(Testimonial)).all() == []
    assert request_row(the_request_id(token)).status == "clicked"


def the_request_id(token):
    from app.lifecycle.models import TestimonialRequest

    return db.session.scalar(select(TestimonialRequest.id).where(TestimonialRequest.token == token))


def test_a_file_that_looks_like_a_video_but_is_not_is_marked_failed_and_the_text_stays(
    app, logged_in, client, token, clock
):
    fake = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"garbage " * 500
    send_by_upload(client, token, fake, "video/mp4", text="The mug is lovely")

    assert process_due_videos(clock()) == {"ready": 0, "failed": 1, "retry": 0}

    done = the_testimonial()
    assert done.video_status == "failed" and done.video_attempts == 1  # no retry: it will never decode
    assert "not a video we can read" in done.video_error
    page = logged_in.get("/testimonials/").get_data(as_text=True)
    assert "The mug is lovely" in page and "could not be processed" in page


def test_storage_trouble_is_retried_with_backoff_then_marked_failed(app, client, token, clock, clips):
    send_by_upload(client, token, clips["h264_mp4"], "video/mp4")
    key = the_testimonial().video_key
    get_storage().delete(key)  # the storage lost it (or cannot be reached)

    assert process_due_videos(clock())["retry"] == 1
    waiting = the_testimonial()
    assert (waiting.video_status, waiting.video_attempts) == ("pending", 1)
    assert "no such stored file" in waiting.video_error
    assert process_due_videos(clock())["retry"] == 0  # not due yet: one minute of backoff
    clock.advance(minutes=1)
    assert process_due_videos(clock())["retry"] == 1
    clock.advance(minutes=2)
    assert process_due_videos(clock())["failed"] == 1
    failed = the_testimonial()
    assert (failed.video_status, failed.video_attempts) == ("failed", 3)
    assert "gave up after 3 attempts" in failed.video_error


def test_a_claim_left_by_a_dead_process_is_taken_again_after_its_lease(app, client, token, clock, clips):
    send_by_upload(client, token, clips["h264_mp4"], "video/mp4")
    testimonial = the_testimonial()
    testimonial.video_status, testimonial.video_claimed_at = "processing", clock()
    db.session.commit()
    assert process_due_videos(clock())["ready"] == 0  # another process is on it
    clock.advance(seconds=app.config["VIDEO_PROCESS_LEASE_SECONDS"] + 1)
    assert process_due_videos(clock())["ready"] == 1


def test_the_scheduler_runs_the_video_job(app, client, token, clock, clips):
    from app.scheduler import JOBS, video_job

    assert "videos" in [job_id for job_id, _, _ in JOBS]
    send_by_upload(client, token, clips["h264_mp4"], "video/mp4")
    db.session.commit()
    video_job(app)
    assert the_testimonial().video_status == "ready"


def test_cli_lists_and_shows_testimonials(app, client, token, clock, clips, cli, runner):
    send_by_upload(
        client, token, clips["chrome_webm"], "video/webm", text="Great mug", rating="5", display_name="Ada L."
    )
    assert cli("testimonials", "process")["ready"] == 1

    [row] = cli("testimonials", "list")
    assert {
        k: row[k]
        for k in ("status", "rating", "display_name", "text", "has_video", "video_status", "video_content_type")
    } == {
        "status": "pending",
        "rating": 5,
        "display_name": "Ada L.",
        "text": "Great mug",
        "has_video": True,
        "video_status": "ready",
        "video_content_type": "video/webm",
    }
    assert row["video_duration_seconds"] == pytest.approx(3.0, abs=0.1)
    assert (
        row["consent_text"].startswith("Demo Shop may show my testimonial")
        and row["consent_at"] == "2026-11-20T12:00:00Z"
    )
    for field in ("id", "request_id", "created_at"):
        assert field in row
    shown = cli("testimonials", "show", str(row["id"]))
    assert {k: shown[k] for k in row} == row
    missing = runner.invoke(args=["testimonials", "show", "999", "--json"])
    assert missing.exit_code != 0 and "no testimonial 999" in missing.output
    assert cli("testimonials", "list", "--video-status", "failed") == []


def test_the_s3_storage_path_end_to_end(app_factory, clock, clips, s3_server, s3_bucket, tmp_path):  # noqa: F811
    """Uploads, videos and posters in a bucket; the admin's player gets a presigned URL."""
    import urllib.request

    app = app_factory(VIDEO_STORAGE_URL=f"s3://{s3_bucket}/shop", S3_ENDPOINT_URL=s3_server, S3_REGION="us-east-1")
    with app.app_context():
        client = app.test_client()
        token = request_row(sent_request(client, clock)).token
        send_by_upload(client, token, clips["chrome_webm"], "video/webm", text="From S3")
        assert process_due_videos(clock())["ready"] == 1
        done = the_testimonial()
        storage = get_storage()
        assert storage.name == "s3"
        assert set(storage.list("videos")) == {done.video_key, done.playable_key}
        assert storage.list("posters") == [done.poster_key]
        assert storage.list("uploads") == []  # the parts were joined and removed
        assert not os.path.exists(app.config["UPLOAD_DIR"])  # nothing on this machine's disk

        db.session.commit()  # end this context's read before the login opens its own
        admin = AuthActions(client, app)
        admin.create()
        admin.login()
        player = client.get(f"/testimonials/{done.id}/video")
        assert player.status_code == 302
        with urllib.request.urlopen(
            urllib.request.Request(player.headers["Location"], headers={"Range": "bytes=0-99"}), timeout=10
        ) as answer:
            assert answer.status == 206 and answer.headers["Content-Type"] == "video/webm"  # the original
        # The dashboard's player offers the copy that plays everywhere first, then the original.
        page = client.get("/testimonials/").get_data(as_text=True)
        assert page.index(f"/testimonials/{done.id}/playable") < page.index(f"/testimonials/{done.id}/video")
        playable = client.get(f"/testimonials/{done.id}/playable")
        assert playable.status_code == 302
        with urllib.request.urlopen(playable.headers["Location"], timeout=10) as answer:
            assert answer.headers["Content-Type"] == "video/mp4" and answer.read(8)[4:8] == b"ftyp"
        with storage.open(done.poster_key) as poster:
            assert poster.read()[:3] == b"\xff\xd8\xff"
