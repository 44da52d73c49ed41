"""Short test-pattern videos for the demo shop, made at seed time with PyAV (no files in
the repository, nothing downloaded): colour bars with a moving marker and a sine tone,
H.264/AAC in an MP4 with its index first (plays in every browser), and a JPEG poster.

Each is a few seconds at 320×568 (a phone held upright) and about 100 KB.
"""

import math
import os
import struct
import tempfile
from fractions import Fraction

import av

WIDTH, HEIGHT, FPS = 320, 568, 15
SAMPLE_RATE = 44100
BARS = [
    (235, 235, 235),
    (235, 235, 16),
    (16, 235, 235),
    (16, 235, 16),
    (235, 16, 235),
    (235, 16, 16),
    (16, 16, 235),
    (16, 16, 16),
]


def _bars_row(shift):
    width = WIDTH // len(BARS)
    colours = BARS[shift % len(BARS) :] + BARS[: shift % len(BARS)]
    return b"".join(bytes(c) * width for c in colours)


def _frame_bytes(n, accent):
    """One RGB frame: bars in the top two thirds, the shop's accent colour below, and a white
    marker that travels down the picture (so a player visibly plays)."""
    bars = _bars_row(n // FPS) * (HEIGHT * 2 // 3)
    lower = bytes(accent) * WIDTH * (HEIGHT - HEIGHT * 2 // 3)
    picture = bytearray(bars + lower)
    size = 36
    top = (n * 7) % (HEIGHT - size)
    left = (WIDTH - size) // 2
    white = b"\xff" * (size * 3)
    for row in range(top, top + size):
        start = (row * WIDTH + left) * 3
        picture[start : start + size * 3] = white
    return bytes(picture)


def _tone(samples, start, frequency):
    return struct.pack(
        f"<{samples}f", *(0.25 * math.sin(2 * math.pi * frequency * (start + i) / SAMPLE_RATE) for i in range(samples))
    )


def make_test_video(path, *, seconds=3.0, frequency=440.0, accent=(59, 91, 219)):
    """Write an MP4 test pattern with a tone to ``path``; returns its duration in seconds."""
    frames = int(seconds * FPS)
    with av.open(path, "w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "30"})
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for n in range(frames):
            frame = av.VideoFrame(WIDTH, HEIGHT, "rgb24")
            frame.planes[0].update(_frame_bytes(n, accent))
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            container.mux(video.encode(frame.reformat(format="yuv420p")))
        total, chunk = int(seconds * SAMPLE_RATE), 1024
        for start in range(0, total, chunk):
            samples = min(chunk, total - start)
            frame = av.AudioFrame(format="flt", layout="mono", samples=samples)
            frame.planes[0].update(_tone(samples, start, frequency))
            frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, start, Fraction(1, SAMPLE_RATE)
            container.mux(audio.encode(frame))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return frames / FPS


def make_poster(path, accent=(59, 91, 219)):
    """The first frame as a JPEG."""
    with av.open(path, "w", format="image2", options={"update": "1"}) as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuvj420p"
        frame = av.VideoFrame(WIDTH, HEIGHT, "rgb24")
        frame.planes[0].update(_frame_bytes(0, accent))
        frame.pts = 0
        container.mux(stream.encode(frame.reformat(format="yuvj420p")))
        container.mux(stream.encode(None))


def store_demo_video(storage, name, *, seconds, frequency, accent):
    """Make a video and its poster and save both; returns the testimonial fields to set."""
    with tempfile.TemporaryDirectory() as tmp:
        video_path, poster_path = os.path.join(tmp, "v.mp4"), os.path.join(tmp, "p.jpg")
        duration = make_test_video(video_path, seconds=seconds, frequency=frequency, accent=accent)
        make_poster(poster_path, accent)
        video_key, poster_key = f"videos/demo-{name}.mp4", f"posters/demo-{name}.jpg"
        size = storage.save_file(video_key, video_path, "video/mp4")
        storage.save_file(poster_key, poster_path, "image/jpeg")
    return {
        "video_key": video_key,
        "video_content_type": "video/mp4",
        "video_size": size,
        "video_status": "ready",
        "playable_key": video_key,
        "playable_content_type": "video/mp4",
        "poster_key": poster_key,
        "video_duration_seconds": duration,
        "video_width": WIDTH,
        "video_height": HEIGHT,
        "video_rotation": 0,
        "video_codec": "h264",
        "audio_codec": "aac",
    }
