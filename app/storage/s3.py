"""Storage in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, …) through boto3."""

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import redirect

from app.storage.base import Storage, StorageError, check_key


class S3Storage(Storage):
    name = "s3"

    def __init__(self, bucket, prefix="", endpoint_url=None, region=None, presign_seconds=300):
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.presign_seconds = presign_seconds
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            config=Config(
                signature_version="s3v4",
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def object_key(self, key):
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def save(self, key, stream, content_type=None):
        counted = CountingReader(stream)
        extra = {"ContentType": content_type} if content_type else {}
        try:
            # upload_fileobj sends big files as a multipart upload, small ones in one PUT.
            self.client.upload_fileobj(counted, self.bucket, self.object_key(key), ExtraArgs=extra)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not store {key} in s3://{self.bucket}: {exc}") from exc
        return counted.count

    def _get(self, key, **kwargs):
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_key(key), **kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StorageError(f"no such stored file: {key}") from None
            raise StorageError(f"could not read {key} from s3://{self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read {key} from s3://{self.bucket}: {exc}") from exc

    def open(self, key):
        return self._get(key)["Body"]

    def read_range(self, key, start, length):
        if length <= 0:
            return b""
        body = self._get(key, Range=f"bytes={start}-{start + length - 1}")["Body"]
        with body:
            return body.read()

    def _head(self, key):
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StorageError(f"could not look up {key} in s3://{self.bucket}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not look up {key} in s3://{self.bucket}: {exc}") from exc

    def exists(self, key):
        return self._head(key) is not None

    def size(self, key):
        head = self._head(key)
        if head is None:
            raise StorageError(f"no such stored file: {key}")
        return head["ContentLength"]

    def delete(self, key):
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not delete {key} from s3://{self.bucket}: {exc}") from exc

    def list(self, prefix):
        full = self.object_key(prefix.rstrip("/") + "/x")[:-1]
        keys = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"could not list {prefix} in s3://{self.bucket}: {exc}") from exc
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(key[strip:] for key in keys)

    def presigned_url(self, key, *, content_type, download_name=None, as_attachment=False):
        params = {"Bucket": self.bucket, "Key": self.object_key(key), "ResponseContentType": content_type}
        if as_attachment and download_name:
            params["ResponseContentDisposition"] = f'attachment; filename="{download_name}"'
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.presign_seconds)

    def response(self, key, *, content_type, download_name=None, as_attachment=False):
        if not self.exists(key):
            raise StorageError(f"no such stored file: {key}")
        # The browser fetches (and seeks in) the video straight from the bucket for a
        # few minutes; the app never streams it.
        response = redirect(
            self.presigned_url(
                key, content_type=content_type, download_name=download_name, as_attachment=as_attachment
            ),
            302,
        )
        response.headers["Cache-Control"] = "no-store"
        return response


class CountingReader:
    """Wraps a stream and counts what was read from it (boto3 does not say)."""

    def __init__(self, stream):
        self.stream, self.count = stream, 0

    def read(self, size=-1):
        data = self.stream.read(size)
        self.count += len(data)
        return data
