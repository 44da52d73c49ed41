"""The storage interface every backend implements."""

import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from contextlib import contextmanager

KEY_RE = re.compile(r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*")


class StorageError(RuntimeError):
    """The storage cannot do what was asked (misconfigured, unreachable, missing key)."""


def check_key(key):
    if not isinstance(key, str) or len(key) > 255 or not KEY_RE.fullmatch(key) or ".." in key.split("/"):
        raise StorageError(f"not a storage key: {key!r}")
    return key


class Storage(ABC):
    """Blobs by key. Implementations: ``LocalStorage``, ``S3Storage``; each must give every
    abstract method (an incomplete backend cannot even be built)."""

    name = "storage"

    @abstractmethod
    def save(self, key, stream, content_type=None):
        """Store everything ``stream`` (a binary file-like object) yields under ``key``,
        replacing what was there; returns the number of bytes stored."""

    @abstractmethod
    def open(self, key):
        """A binary file-like object reading the whole blob (close it, or use ``with``)."""

    @abstractmethod
    def read_range(self, key, start, length):
        """Up to ``length`` bytes from ``start``."""

    @abstractmethod
    def exists(self, key):
        """Whether a blob is stored under ``key``."""

    @abstractmethod
    def size(self, key):
        """The blob's size in bytes; StorageError when there is none."""

    @abstractmethod
    def delete(self, key):
        """Remove the blob; a missing key is not an error."""

    @abstractmethod
    def list(self, prefix):
        """The keys under ``prefix`` (``"uploads/ab12/"``), sorted."""

    def delete_prefix(self, prefix):
        for key in self.list(prefix):
            self.delete(key)

    @abstractmethod
    def response(self, key, *, content_type, download_name=None, as_attachment=False):
        """A Flask response that gives an admin's browser the blob, seekable (range requests)."""

    @contextmanager
    def local_path(self, key, suffix=""):
        """A path on this machine holding the blob for the duration of the ``with`` (the
        video tools read files). The base version copies to a temporary file."""
        with tempfile.NamedTemporaryFile(suffix=suffix) as tmp, self.open(key) as source:
            shutil.copyfileobj(source, tmp, 1024 * 1024)
            tmp.flush()
            yield tmp.name

    def save_file(self, key, path, content_type=None):
        with open(path, "rb") as f:
            return self.save(key, f, content_type)
