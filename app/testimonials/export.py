"""The testimonials export: one ZIP with each video (the original and the version that
plays everywhere), its poster, and ``testimonials.json`` + ``testimonials.csv`` holding
every field and the consent record.

The archive is streamed: ``zipfile`` writes into ``ChunkSink``, a file-like object that
only collects what was written since the last chunk was handed on, and each stored file
is copied through in 1 MiB pieces. Nothing holds a whole video, let alone the archive, in
memory (``bench/export_memory.py`` measures it). Members are stored, not deflated: videos
and JPEGs do not compress.

The database is read once, before the first byte (``export_rows``): on SQLite a
transaction holds the write lock, and a slow download must not hold up the webhooks.
"""

import csv
import io
import json
import zipfile

from app.clock import isoformat
from app.extensions import db
from app.storage import StorageError, get_storage
from app.testimonials.models import poster_content_type
from app.testimonials.moderation import display_name
from app.testimonials.services import testimonials_query

CHUNK = 1024 * 1024
EXTENSIONS = {"video/mp4": "mp4", "video/webm": "webm", "video/quicktime": "mov"}
CSV_FIELDS = (
    "id",
    "public_id",
    "status",
    "featured",
    "created_at",
    "moderated_at",
    "withdrawn_at",
    "request_id",
    "campaign_id",
    "order_id",
    "product_id",
    "product_title",
    "customer_first_name",
    "customer_last_name",
    "customer_email",
    "customer_phone",
    "display_name",
    "rating",
    "text",
    "consent",
    "consent_text",
    "consent_at",
    "consent_ip",
    "video_status",
    "video_content_type",
    "video_size",
    "video_duration_seconds",
    "video_width",
    "video_height",
    "video_codec",
    "audio_codec",
    "playable_content_type",
    "video_file",
    "playable_file",
    "poster_file",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ChunkSink(io.RawIOBase):
    """Write-only and not seekable: zipfile then writes data descriptors after each member
    instead of seeking back, so the archive can go out as it is made."""

    def __init__(self):
        self.pending = []
        self.position = 0

    def writable(self):
        return True

    def write(self, data):
        self.pending.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self):
        return self.position

    def take(self):
        data = b"".join(self.pending)
        self.pending.clear()
        return data


def extension(content_type, key):
    return EXTENSIONS.get(content_type or "") or (key.rsplit(".", 1)[-1] if "." in key else "bin")


def export_rows(flt):
    """(records, files): one dict per testimonial with every field, and the stored files
    to put beside them as (zip path, storage key)."""
    records, files = [], []
    for t in db.session.scalars(testimonials_query(flt)).unique():
        req = t.request
        video_file = playable_file = poster_file = None
        if t.video_key:
            video_file = f"videos/{t.id}-original.{extension(t.video_content_type, t.video_key)}"
            files.append((video_file, t.video_key))
        if t.playable_key and t.playable_key != t.video_key:
            playable_file = f"videos/{t.id}-playable.{extension(t.playable_content_type, t.playable_key)}"
            files.append((playable_file, t.playable_key))
        elif t.playable_key:
            playable_file = video_file  # the original already plays everywhere
        if t.poster_key:
            poster_file = (
                f"posters/{t.id}.{poster_content_type(t.poster_key).rsplit('/', 1)[-1].replace('jpeg', 'jpg')}"
            )
            files.append((poster_file, t.poster_key))
        records.append(
            {
                "id": t.id,
                "public_id": t.public_id,
                "status": t.status,
                "featured": t.featured,
                "created_at": isoformat(t.created_at),
                "moderated_at": isoformat(t.moderated_at),
                "withdrawn_at": isoformat(t.withdrawn_at),
                "request_id": req.id,
                "campaign_id": req.campaign_id,
                "order_id": req.order_id,
                "product_id": req.product_id,
                "product_title": req.product_title,
                "customer_first_name": req.customer_first_name,
                "customer_last_name": req.customer_last_name,
                "customer_email": req.customer_email,
                "customer_phone": req.customer_phone,
                "display_name": display_name(t),
                "rating": t.rating,
                "text": t.text,
                "consent": t.consent,
                "consent_text": t.consent_text,
                "consent_at": isoformat(t.consent_at),
                "consent_ip": t.consent_ip,
                "video_status": t.video_status,
                "video_content_type": t.video_content_type,
                "video_size": t.video_size,
                "video_duration_seconds": t.video_duration_seconds,
                "video_width": t.video_width,
                "video_height": t.video_height,
                "video_codec": t.video_codec,
                "audio_codec": t.audio_codec,
                "playable_content_type": t.playable_content_type,
                "video_file": video_file,
                "playable_file": playable_file,
                "poster_file": poster_file,
            }
        )
    return records, files


def csv_text(records):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for record in records:
        row = {}
        for name in CSV_FIELDS:
            value = record[name]
            # Customer-written text opened in a spreadsheet must stay text, never a formula.
            if isinstance(value, str) and value.startswith(FORMULA_START) and name != "customer_phone":
                value = "'" + value
            row[name] = value
        writer.writerow(row)
    return buffer.getvalue()


def zip_chunks(records, files, storage=None):
    """The archive, as a series of byte strings. A file missing from storage is left out
    and named in ``missing.txt`` (the export still holds everything else)."""
    storage = storage or get_storage()
    sink = ChunkSink()
    missing = []
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        archive.writestr("testimonials.json", json.dumps({"testimonials": records}, indent=2, ensure_ascii=False))
        archive.writestr("testimonials.csv", csv_text(records))
        yield sink.take()
        for path, key in files:
            try:
                source = storage.open(key)
            except StorageError:
                missing.append(f"{path}: {key} is missing from the storage")
                continue
            with source, archive.open(path, mode="w", force_zip64=True) as member:
                while piece := source.read(CHUNK):
                    member.write(piece)
                    if sink.position and sink.pending:
                        yield sink.take()
            yield sink.take()
        if missing:
            archive.writestr("missing.txt", "\n".join(missing) + "\n")
    yield sink.take()


def export_chunks(flt):
    records, files = export_rows(flt)
    db.session.rollback()  # the read is over: no transaction held while the bytes go out
    return len(records), zip_chunks(records, files, get_storage())
