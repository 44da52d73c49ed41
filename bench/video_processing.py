"""Benchmark: how long the video job takes for one customer video, and the upload path.

    .venv/bin/python bench/video_processing.py                  # 30 s of 1280x720, 30 fps
    .venv/bin/python bench/video_processing.py --seconds 90 --width 1280 --height 720
    .venv/bin/python bench/video_processing.py --seconds 10 --texture   # noisy picture: a worst case

Makes a WebM like Chrome's MediaRecorder writes (VP8 + Opus, no duration, no cues) of the
given length with PyAV, then prints the time of each step the processing job runs on it
(app.testimonials.video: probe, H.264/AAC faststart copy, poster) and the resulting sizes;
and the time to send ``--upload-mb`` (100) MB through the tus endpoints in 5 MB chunks (the
page's chunk size) with the app's test client on a local folder storage. Figures, never assertions. On a
shared 2-core machine the transcode dominates: it runs in the scheduler's thread, one
video at a time per process.
"""

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--upload-mb", type=int, default=100, help="size of the timed tus upload")
    parser.add_argument(
        "--texture",
        action="store_true",
        help="a band of noise in every frame: much more work for the encoders (slow to make)",
    )
    args = parser.parse_args()

    from app.testimonials import video
    from tests import media

    with tempfile.TemporaryDirectory(prefix="bench-video-") as folder:
        source = os.path.join(folder, "recording.webm")
        started = time.perf_counter()
        media.make_video(
            source,
            fmt="webm",
            vcodec="libvpx",
            acodec="libopus",
            seconds=args.seconds,
            width=args.width,
            height=args.height,
            fps=args.fps,
            container_options={"live": "1"},
            texture=args.texture,
        )
        made = time.perf_counter() - started
        size = os.path.getsize(source)
        print(
            f"input: {args.seconds:.0f} s WebM VP8/Opus {args.width}x{args.height} @ {args.fps} fps, "
            f"{size / 1e6:.1f} MB (made in {made:.1f} s)"
        )

        started = time.perf_counter()
        info = video.probe(source)
        probe_s = time.perf_counter() - started
        print(
            f"probe:    {probe_s:6.2f} s  (duration from packets: {info.measured_duration:.1f} s, header: {info.duration})"
        )

        playable = os.path.join(folder, "playable.mp4")
        started = time.perf_counter()
        video.make_playable(source, playable, info)
        transcode_s = time.perf_counter() - started
        print(
            f"H.264:    {transcode_s:6.2f} s  ({os.path.getsize(playable) / 1e6:.1f} MB, "
            f"{args.seconds / transcode_s:.2f}x real time)"
        )

        poster = os.path.join(folder, "poster.jpg")
        started = time.perf_counter()
        video.make_poster(playable, poster, video.probe(playable))
        poster_s = time.perf_counter() - started
        print(f"poster:   {poster_s:6.2f} s  ({os.path.getsize(poster) / 1e3:.0f} kB)")
        print(f"job total: {probe_s + transcode_s + poster_s:.1f} s for one video")

        data = b"\x1a\x45\xdf\xa3" + os.urandom(args.upload_mb * 1024 * 1024 - 4)
        seconds = upload_seconds(folder, data)
        print(
            f"tus upload of {args.upload_mb} MB in 5 MB chunks: {seconds:.2f} s, {args.upload_mb / seconds:.0f} MB/s "
            "(test client, no network; local folder storage; includes joining the parts)"
        )


def upload_seconds(folder, data):
    from app import create_app
    from app.extensions import db
    from config import TestConfig

    db_file = os.path.join(folder, "bench.db")
    config = type(
        "BenchConfig",
        (TestConfig,),
        {
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{db_file}",
            "UPLOAD_DIR": os.path.join(folder, "uploads"),
            "VIDEO_MAX_MB": 4096,
        },
    )
    app = create_app(config)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        from tests.conftest import FakeClock, parse
        from tests.factories import request_row, sent_request

        client = app.test_client()
        app.config["CLOCK"] = FakeClock(parse("2026-11-20T12:00:00Z"))
        token = request_row(sent_request(client, app.config["CLOCK"])).token
        from tests.tus_helpers import Tus

        started = time.perf_counter()
        Tus(client, token).upload(data, chunk=5 * 1024 * 1024)
        elapsed = time.perf_counter() - started
        db.session.remove()
        db.engine.dispose()
    return elapsed


if __name__ == "__main__":
    main()
