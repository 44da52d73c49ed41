"""The storage interface, the same tests on both backends: a local folder, and an S3
bucket on a local S3-compatible server (moto on 127.0.0.1)."""

import io
import os
import urllib.request

import pytest

from app.storage import StorageError, storage_from_config
from tests.s3_server import s3_bucket, s3_server  # noqa: F401  (fixtures)


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    if request.param == "local":
        return storage_from_config({"UPLOAD_DIR": str(tmp_path / "uploads")})
    endpoint, bucket = request.getfixturevalue("s3_server"), request.getfixturevalue("s3_bucket")
    return storage_from_config(
        {
            "VIDEO_STORAGE_URL": f"s3://{bucket}/shop-a",
            "S3_ENDPOINT_URL": endpoint,
            "S3_REGION": "us-east-1",
            "UPLOAD_DIR": str(tmp_path / "unused"),
        }
    )


def test_save_read_size_exists_delete(storage):
    data = os.urandom(3 * 1024 * 1024 + 17)

    assert storage.save("videos/a1.webm", io.BytesIO(data), "video/webm") == len(data)

    assert storage.exists("videos/a1.webm") and not storage.exists("videos/other.webm")
    assert storage.size("videos/a1.webm") == len(data)
    with storage.open("videos/a1.webm") as f:
        assert f.read() == data
    assert storage.read_range("videos/a1.webm", 1000, 50) == data[1000:1050]
    assert storage.read_range("videos/a1.webm", len(data) - 5, 50) == data[-5:]
    with storage.local_path("videos/a1.webm", suffix=".webm") as path:
        with open(path, "rb") as f:
            assert f.read() == data
    storage.delete("videos/a1.webm")
    storage.delete("videos/a1.webm")  # a second delete is not an error
    assert not storage.exists("videos/a1.webm")
    with pytest.raises(StorageError):
        storage.size("videos/a1.webm")
    with pytest.raises(StorageError):
        storage.open("videos/a1.webm")


def test_list_and_delete_prefix(storage):
    for name in ("uploads/u1/000000000000", "uploads/u1/000000001000", "uploads/u2/000000000000"):
        storage.save(name, io.BytesIO(b"x" * 10))

    assert storage.list("uploads/u1") == ["uploads/u1/000000000000", "uploads/u1/000000001000"]
    storage.delete_prefix("uploads/u1/")
    assert storage.list("uploads/u1") == []
    assert storage.list("uploads/u2") == ["uploads/u2/000000000000"]


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "videos/../x", "sp ace", "", "a\x00b"])
def test_keys_outside_the_storage_are_refused(storage, key):
    with pytest.raises(StorageError):
        storage.save(key, io.BytesIO(b"x"))


def test_an_admin_gets_the_video_with_range_requests(storage):
    """Local: the app answers 206 itself. S3: a presigned URL the browser seeks in directly."""
    from flask import Flask

    data = bytes(range(256)) * 400
    storage.save("videos/b2.mp4", io.BytesIO(data), "video/mp4")
    app = Flask(__name__)

    @app.get("/video/<name>")
    def video(name):
        try:
            return storage.response(
                f"videos/{name}", content_type="video/mp4", download_name="t-1.mp4", as_attachment=True
            )
        except StorageError:
            return "missing", 404

    client = app.test_client()
    assert client.get("/video/missing.mp4").status_code == 404
    response = client.get("/video/b2.mp4", headers={"Range": "bytes=100-199"})
    if storage.name == "local":
        assert response.status_code == 206
        assert response.data == data[100:200]
        assert "attachment" in response.headers["Content-Disposition"]
        response.close()
        return
    assert response.status_code == 302
    url = response.headers["Location"]
    assert "X-Amz-Signature" in url and "X-Amz-Expires=300" in url
    request = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 206
        assert answer.read() == data[100:200]
        assert answer.headers["Content-Type"] == "video/mp4"
        assert "attachment" in answer.headers["Content-Disposition"]


def test_a_storage_url_that_names_no_storage_is_refused(tmp_path):
    with pytest.raises(StorageError, match="VIDEO_STORAGE_URL"):
        storage_from_config({"VIDEO_STORAGE_URL": "ftp://x/y", "UPLOAD_DIR": str(tmp_path)})
    with pytest.raises(StorageError, match="bucket"):
        storage_from_config({"VIDEO_STORAGE_URL": "s3:///prefix", "UPLOAD_DIR": str(tmp_path)})
