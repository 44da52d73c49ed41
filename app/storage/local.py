"""Storage in a folder on this machine (the default: instance/uploads)."""

import os
import tempfile
from contextlib import contextmanager

from flask import send_file

from app.storage.base import Storage, StorageError, check_key

CHUNK = 1024 * 1024


class LocalStorage(Storage):
    name = "local"

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, key):
        return os.path.join(self.root, *check_key(key).split("/"))

    def save(self, key, stream, content_type=None):
        target = self.path(key)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Written beside the target and renamed: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".incoming-")
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    out.write(chunk)
                    size += len(chunk)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        return size

    def open(self, key):
        try:
            return open(self.path(key), "rb")
        except FileNotFoundError:
            raise StorageError(f"no such stored file: {key}") from None

    def read_range(self, key, start, length):
        with self.open(key) as f:
            f.seek(start)
            return f.read(length)

    def exists(self, key):
        return os.path.isfile(self.path(key))

    def size(self, key):
        try:
            return os.path.getsize(self.path(key))
        except FileNotFoundError:
            raise StorageError(f"no such stored file: {key}") from None

    def delete(self, key):
        try:
            os.remove(self.path(key))
        except FileNotFoundError:
            pass

    def list(self, prefix):
        folder = os.path.dirname(self.path(prefix.rstrip("/") + "/x"))
        if not os.path.isdir(folder):
            return []
        base = prefix.rstrip("/") + "/"
        return sorted(
            base + name
            for name in os.listdir(folder)
            if not name.startswith(".") and os.path.isfile(os.path.join(folder, name))
        )

    def response(self, key, *, content_type, download_name=None, as_attachment=False):
        if not self.exists(key):
            raise StorageError(f"no such stored file: {key}")
        # conditional=True answers Range requests with 206, so the player can seek.
        return send_file(
            self.path(key),
            mimetype=content_type,
            as_attachment=as_attachment,
            download_name=download_name,
            conditional=True,
            max_age=0,
        )

    @contextmanager
    def local_path(self, key, suffix=""):
        if not self.exists(key):
            raise StorageError(f"no such stored file: {key}")
        yield self.path(key)
