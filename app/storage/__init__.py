"""Where videos, posters and uploads live: one small interface, two backends.

``VIDEO_STORAGE_URL`` picks the backend:

- unset, or ``file:///some/folder``: a local folder (default ``UPLOAD_DIR``, which is
  ``instance/uploads``). Admins get files through the app, with range requests.
- ``s3://bucket/prefix``: any S3-compatible bucket through boto3 (``S3_ENDPOINT_URL`` for a
  non-AWS service, the usual ``AWS_*`` credential variables). Several app machines share
  it; admins get short-lived presigned URLs (``S3_PRESIGN_SECONDS``).

Keys are relative paths such as ``videos/3f…9a.webm``: letters, digits, ``-_.`` and ``/``,
chosen by the app, never by a customer.
"""

import re
from urllib.parse import urlparse

from flask import current_app

from app.storage.base import Storage, StorageError, check_key
from app.storage.local import LocalStorage
from app.storage.s3 import S3Storage

__all__ = ["Storage", "StorageError", "check_key", "get_storage", "storage_from_config"]


def storage_from_config(config):
    url = config.get("VIDEO_STORAGE_URL") or ""
    if not url or url.startswith("file://"):
        return LocalStorage(urlparse(url).path if url else config["UPLOAD_DIR"])
    if url.startswith("s3://"):
        parsed = urlparse(url)
        if not parsed.netloc or not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", parsed.netloc):
            raise StorageError(f"VIDEO_STORAGE_URL={url!r} does not name an S3 bucket (s3://bucket/prefix)")
        return S3Storage(
            bucket=parsed.netloc,
            prefix=parsed.path.strip("/"),
            endpoint_url=config.get("S3_ENDPOINT_URL") or None,
            region=config.get("S3_REGION") or None,
            presign_seconds=int(config.get("S3_PRESIGN_SECONDS") or 300),
        )
    raise StorageError(f"VIDEO_STORAGE_URL={url!r} is neither s3://bucket/prefix nor file:///folder")


def get_storage(app=None):
    """The app's storage (one per app, made on first use)."""
    app = app or current_app._get_current_object()
    storage = app.extensions.get("video_storage")
    if storage is None:
        storage = app.extensions["video_storage"] = storage_from_config(app.config)
    return storage
