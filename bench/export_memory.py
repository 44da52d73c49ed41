"""Benchmark: the testimonials export of ~1 GB of video stays in bounded memory.

    .venv/bin/python bench/export_memory.py                 # 1 GB: 20 videos of 50 MB
    .venv/bin/python bench/export_memory.py --videos 8 --mb 25

Builds a migrated SQLite database in a temporary folder with that many approved video
testimonials (each file written to the local storage in 1 MiB pieces of random bytes, a
poster and a playable version for every other one), then runs
``flask testimonials export --out …`` in a child process and prints the archive's size,
the time taken and the child's peak resident memory (``ru_maxrss``). The target is a
peak under 100 MB whatever the archive's size: the ZIP is written as it is read, a piece
at a time. Figures, never assertions.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def seed(folder, videos, mb):
    from flask_migrate import upgrade
    from sqlalchemy import insert

    from app import create_app
    from app.campaigns.models import Campaign
    from app.extensions import db
    from app.lifecycle.models import TestimonialRequest
    from app.storage import get_storage
    from app.testimonials.models import Testimonial, new_public_id
    from config import TestConfig

    uploads = os.path.join(folder, "uploads")
    config = type(
        "Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/bench.db", "UPLOAD_DIR": uploads}
    )
    app = create_app(config)
    piece = os.urandom(1024 * 1024)
    with app.app_context():
        upgrade()
        campaign = Campaign(name="Bench", created_at=NOW, updated_at=NOW)
        db.session.add(campaign)
        db.session.flush()
        storage = get_storage()
        for n in range(videos):
            key = f"videos/bench-{n}.mp4"
            path = storage.path(key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                for _ in range(mb):
                    out.write(piece)
            req_id = db.session.execute(
                insert(TestimonialRequest).values(
                    campaign_id=campaign.id,
                    order_id=f"o{n}",
                    item_id="i",
                    product_id="p",
                    product_title="Mug",
                    customer_email=f"c{n}@example.com",
                    channel="email",
                    token=f"bench-token-{n}",
                    status="submitted",
                    trigger_at=NOW,
                    created_at=NOW,
                    updated_at=NOW,
                    submitted_at=NOW,
                )
            ).inserted_primary_key[0]
            extra = {}
            if n % 2 == 0:
                os.makedirs(os.path.join(uploads, "posters"), exist_ok=True)
                with open(storage.path(f"posters/bench-{n}.jpg"), "wb") as poster:
                    poster.write(b"\xff\xd8\xff" + os.urandom(60_000))
                extra = {
                    "poster_key": f"posters/bench-{n}.jpg",
                    "playable_key": key,
                    "video_status": "ready",
                    "playable_content_type": "video/mp4",
                }
            db.session.add(
                Testimonial(
                    request_id=req_id,
                    text=f"Bench {n}",
                    consent=True,
                    status="approved",
                    video_key=key,
                    video_content_type="video/mp4",
                    video_size=mb << 20,
                    public_id=new_public_id(),
                    created_at=NOW + timedelta(seconds=n),
                    **extra,
                )
            )
        db.session.commit()
        db.engine.dispose()
    return config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--mb", type=int, default=50, help="size of each video in MiB")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="bench-export-")
    try:
        seed(folder, args.videos, args.mb)
        out = os.path.join(folder, "export.zip")
        env = {
            **os.environ,
            "FLASK_APP": "app",
            "DATABASE_URL": f"sqlite:///{folder}/bench.db",
            "UPLOAD_DIR": os.path.join(folder, "uploads"),
            "SCHEDULER_ENABLED": "false",
            "LOG_LEVEL": "WARNING",
            "SECRET_KEY": "bench-secret-key-bench-secret-key-0123",
        }
        started = time.perf_counter()
        subprocess.run(
            [os.path.join(ROOT, ".venv", "bin", "flask"), "testimonials", "export", "--out", out],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: KiB
        size_mb = os.path.getsize(out) / (1 << 20)
        with zipfile.ZipFile(out) as archive:
            members = len(archive.namelist())
        print(
            f"export of {args.videos} videos x {args.mb} MiB: archive {size_mb:.0f} MiB, {members} members, "
            f"{elapsed:.1f} s, peak RSS of the export process {peak_mb:.1f} MiB (target < 100 MiB)"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
