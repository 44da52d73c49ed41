"""The resumable upload endpoints (tus 1.0.0: core, creation, termination) of the
customer's link, through the real app and database, and one real tus client (tuspy)."""

import io
import os

import pytest
from sqlalchemy import select

from app.extensions import db
from app.testimonials.models import VideoUpload
from app.testimonials.uploads import delete_expired_uploads
from tests.factories import request_row, row_counts, sent_request
from tests.live_server import serving
from tests.tus_helpers import OCTETS, TUS, Tus

WEBM_HEAD = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04"


@pytest.fixture
def token(client, clock):
    return request_row(sent_request(client, clock)).token


@pytest.fixture
def tus(client, token):
    return Tus(client, token)


def stored(app):
    folder = app.config["UPLOAD_DIR"]
    return sorted(
        os.path.relpath(os.path.join(top, name), folder).replace(os.sep, "/")
        for top, _, names in os.walk(folder)
        for name in names
    )


def uploads():
    db.session.expire_all()
    return db.session.scalars(select(VideoUpload)).all()


def test_options_advertises_the_protocol_and_limits(client, token, app):
    response = client.options(f"/r/{token}/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {"creation", "termination"}
    assert response.headers["Tus-Max-Size"] == str(app.config["VIDEO_MAX_MB"] * 1024 * 1024)


def test_a_whole_upload_in_chunks_is_joined_into_one_video(app, tus):
    data = WEBM_HEAD + os.urandom(200_000)

    created = tus.create(len(data), filetype="video/webm", filename="recording.webm")
    assert created.status_code == 201
    assert created.headers["Tus-Resumable"] == "1.0.0"
    upload_id = created.headers["Location"].rsplit("/", 1)[-1]
    assert created.headers["Location"] == f"/r/{tus.token}/uploads/{upload_id}"
    head = tus.head(upload_id)
    assert (head.status_code, head.headers["Upload-Offset"], head.headers["Upload-Length"]) == (
        200,
        "0",
        str(len(data)),
    )
    assert head.headers["Cache-Control"] == "no-store"

    first = tus.patch(upload_id, 0, data[:70_000])
    assert (first.status_code, first.headers["Upload-Offset"]) == (204, "70000")
    assert tus.head(upload_id).headers["Upload-Offset"] == "70000"
    assert len(stored(app)) == 1 and stored(app)[0].startswith(f"uploads/{upload_id}/")
    last = tus.patch(upload_id, 70_000, data[70_000:])
    assert (last.status_code, last.headers["Upload-Offset"]) == (204, str(len(data)))

    assert stored(app) == [f"videos/{upload_id}.webm"]  # the parts are gone
    with open(os.path.join(app.config["UPLOAD_DIR"], "videos", f"{upload_id}.webm"), "rb") as f:
        assert f.read() == data
    [row] = uploads()
    assert (row.offset, row.length, row.content_type, row.filename) == (
        len(data),
        len(data),
        "video/webm",
        "recording.webm",
    )
    assert row.completed_at is not None


def test_a_patch_at_a_wrong_offset_is_409_and_changes_nothing(app, tus):
    data = WEBM_HEAD + os.urandom(5000)
    upload_id = tus.create(len(data)).headers["Location"].rsplit("/", 1)[-1]
    assert tus.patch(upload_id, 0, data[:1000]).status_code == 204
    files = stored(app)

    for wrong in (0, 999, 1001, 4000):
        response = tus.patch(upload_id, wrong, data[wrong : wrong + 500])
        assert response.status_code == 409, wrong
        assert response.headers["Upload-Offset"] == "1000"
        assert "does not match" in response.get_data(as_text=True)
    assert tus.head(upload_id).headers["Upload-Offset"] == "1000"
    assert stored(app) == files


def test_protocol_errors(tus, client, token):
    upload_id = tus.create(100).headers["Location"].rsplit("/", 1)[-1]
    no_version = client.post(f"/r/{token}/uploads", headers={"Upload-Length": "10"})
    assert (no_version.status_code, no_version.headers["Tus-Version"]) == (412, "1.0.0")
    assert tus.patch(upload_id, 0, b"abc", content_type="application/octet-stream").status_code == 415
    assert tus.patch(upload_id, "abc", b"abc").status_code == 400
    assert client.patch(tus.url(upload_id), data=b"x", headers={**TUS, "Content-Type": OCTETS}).status_code == 400
    assert tus.create(0).status_code == 400
    assert client.post(f"/r/{token}/uploads", headers={**TUS, "Upload-Length": "-5"}).status_code == 400
    assert client.post(f"/r/{token}/uploads", headers={**TUS, "Upload-Defer-Length": "1"}).status_code == 400
    bad_meta = client.post(
        f"/r/{token}/uploads", headers={**TUS, "Upload-Length": "10", "Upload-Metadata": "filename !!"}
    )
    assert bad_meta.status_code == 400 and "base64" in bad_meta.get_data(as_text=True)
    assert tus.create(10, filetype="text/plain").status_code == 415
    assert tus.head("0" * 32).status_code == 404
    assert client.post("/r/no-such-token/uploads", headers={**TUS, "Upload-Length": "10"}).status_code == 404


def test_an_oversized_upload_is_refused_before_and_during(small_limit, tus_small):
    app, tus = small_limit, tus_small
    too_big = tus.create(1024 * 1024 + 1, filetype="video/mp4")
    assert too_big.status_code == 413
    assert "larger than 1 MB" in too_big.get_data(as_text=True)
    assert uploads() == []

    upload_id = tus.create(1000).headers["Location"].rsplit("/", 1)[-1]
    past_the_end = tus.patch(upload_id, 0, b"x" * 1001)
    assert past_the_end.status_code == 413
    assert tus.head(upload_id).headers["Upload-Offset"] == "0"
    assert stored(app) == []


@pytest.fixture
def small_limit(app_factory, clock):
    app = app_factory(VIDEO_MAX_MB=1)
    with app.app_context():
        yield app


@pytest.fixture
def tus_small(small_limit, clock):
    client = small_limit.test_client()
    return Tus(client, request_row(sent_request(client, clock)).token)


def test_a_dropped_connection_keeps_what_arrived_and_resumes_from_there(app, tus):
    data = WEBM_HEAD + os.urandom(9000)
    upload_id = tus.create(len(data)).headers["Location"].rsplit("/", 1)[-1]

    # The phone's connection drops after 4000 of 9017 bytes: the body ends early.
    cut = tus.client.patch(
        tus.url(upload_id),
        input_stream=io.BytesIO(data[:4000]),
        headers={**TUS, "Upload-Offset": "0", "Content-Type": OCTETS, "Content-Length": str(len(data))},
    )
    assert cut.status_code in (204, 400)
    offset = int(tus.head(upload_id).headers["Upload-Offset"])
    assert offset == 4000

    assert tus.patch(upload_id, offset, data[offset:]).status_code == 204
    with open(os.path.join(app.config["UPLOAD_DIR"], "videos", f"{upload_id}.webm"), "rb") as f:
        assert f.read() == data


def test_one_upload_per_request_and_termination(app, tus):
    first = tus.create(1000).headers["Location"].rsplit("/", 1)[-1]
    assert tus.patch(first, 0, WEBM_HEAD).status_code == 204

    second = tus.create(2000).headers["Location"].rsplit("/", 1)[-1]  # the customer recorded again

    assert tus.head(first).status_code == 404
    assert [u.id for u in uploads()] == [second]
    assert stored(app) == []
    assert tus.patch(second, 0, WEBM_HEAD).status_code == 204
    deleted = tus.delete(second)
    assert (deleted.status_code, deleted.headers["Tus-Resumable"]) == (204, "1.0.0")
    assert uploads() == [] and stored(app) == []
    assert tus.head(second).status_code == 404


def test_unfinished_uploads_are_deleted_after_a_day(app, tus, clock):
    upload_id = tus.create(1000).headers["Location"].rsplit("/", 1)[-1]
    tus.patch(upload_id, 0, WEBM_HEAD)
    clock.advance(hours=23)
    assert delete_expired_uploads(clock()) == 0
    assert tus.head(upload_id).status_code == 200
    clock.advance(hours=2)

    assert tus.head(upload_id).status_code == 404  # no longer offered to resume
    assert delete_expired_uploads(clock()) == 1
    db.session.commit()
    assert uploads() == [] and stored(app) == []


def test_closed_and_used_links_take_no_upload(client, clock, tus, token):
    from tests.factories import submit_testimonial

    assert submit_testimonial(client, token, text="Great").status_code == 200
    used = tus.create(100)
    assert used.status_code == 409 and "already" in used.get_data(as_text=True)
    before = row_counts()
    assert tus.create(100).status_code == 409
    assert row_counts() == before


def test_a_real_tus_client_uploads_through_a_live_server(app, token):
    """tuspy, another implementation of the protocol, against the app on 127.0.0.1."""
    from tusclient import client as tus_client

    db.session.commit()  # the fixtures' reads end their transaction (SQLite: one writer at a time)
    data = WEBM_HEAD + os.urandom(300_000)
    with serving(app) as base_url, io.BytesIO(data) as source:  # a stream: tuspy leaves files it opened unclosed
        uploader = tus_client.TusClient(f"{base_url}/r/{token}/uploads").uploader(
            file_stream=source, chunk_size=100_000, metadata={"filetype": "video/webm", "filename": "clip.webm"}
        )
        uploader.upload()
    upload_id = uploader.url.rsplit("/", 1)[-1]
    with open(os.path.join(app.config["UPLOAD_DIR"], "videos", f"{upload_id}.webm"), "rb") as f:
        assert f.read() == data
