"""Small test videos made with PyAV at test time (a few kB each, nothing downloaded).

Each writes a moving picture (so a poster frame is a real picture) and a tone.
"""

import fractions
import math
import os
import struct

import av


def _frames(width, height, fps, seconds, texture=False):
    """A coloured picture with a white square moving across; ``texture`` adds a band of
    noise so that an encoder has real work (benchmarks), as a camera picture would."""
    stride = width * 3
    for i in range(int(fps * seconds)):
        picture = bytearray(bytes([(i * 8) % 256, 40, 90]) * width * height)
        x = (i * 4) % max(width - 16, 1)
        for y in range(height // 3, min(height // 3 + 16, height)):
            picture[y * stride + x * 3 : y * stride + (x + 16) * 3] = b"\xff" * 48
        if texture:
            band = height // 4
            picture[-band * stride :] = os.urandom(band * stride)
        frame = av.VideoFrame(width, height, "rgb24")
        frame.planes[0].update(bytes(picture))
        yield frame


def _tone(rate, seconds, samples=1024):
    t = 0
    total = int(rate * seconds)
    while t < total:
        n = min(samples, total - t)
        frame = av.AudioFrame(format="s16", layout="mono", samples=n)
        frame.planes[0].update(
            b"".join(struct.pack("<h", int(6000 * math.sin(2 * math.pi * 440 * (t + k) / rate))) for k in range(n))
        )
        frame.sample_rate = rate
        frame.pts = t
        frame.time_base = fractions.Fraction(1, rate)
        yield frame
        t += n


def make_video(
    path,
    *,
    fmt,
    vcodec,
    acodec=None,
    seconds=3.0,
    width=160,
    height=120,
    fps=15,
    pix_fmt="yuv420p",
    container_options=None,
    rotation=None,
    texture=False,
):
    with av.open(str(path), "w", format=fmt, options=container_options or {}) as out:
        video = out.add_stream(vcodec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if vcodec in ("libx265", "hevc"):
            video.codec_context.options = {"x265-params": "log-level=none"}
        if rotation is not None:
            video.set_display_rotation(rotation)
        audio = None
        if acodec:
            audio = out.add_stream(acodec, rate=48000)
            audio.layout = "mono"
        for frame in _frames(width, height, fps, seconds, texture):
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        if audio is not None:
            for frame in _tone(48000, seconds):
                for packet in audio.encode(frame):
                    out.mux(packet)
            for packet in audio.encode():
                out.mux(packet)
    return path


def webm_without_duration(path, seconds=3.0):
    """What Chrome's MediaRecorder writes: VP8 + Opus in WebM with no duration and no cues."""
    return make_video(
        path, fmt="webm", vcodec="libvpx", acodec="libopus", seconds=seconds, container_options={"live": "1"}
    )


def hevc_mov(path, seconds=2.0, rotation=None):
    """An iPhone-style HEVC video in a QuickTime file (plays in neither Firefox nor most Chromes)."""
    return make_video(path, fmt="mov", vcodec="libx265", acodec="aac", seconds=seconds, rotation=rotation)


def h264_mp4(path, seconds=2.0, faststart=True):
    """An MP4 that already plays everywhere (H.264/AAC, index first)."""
    return make_video(
        path,
        fmt="mp4",
        vcodec="libx264",
        acodec="aac",
        seconds=seconds,
        container_options={"movflags": "+faststart"} if faststart else {},
    )
