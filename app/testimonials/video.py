"""What a video file is and how to make one that plays in every browser (PyAV, which
ships its own FFmpeg libraries: no system ffmpeg needed).

Pure file-in, file-out functions; app.testimonials.processing does the storage and the
database around them.

What "plays everywhere" means here: an MP4 (not QuickTime) with H.264 video in 4:2:0 and
AAC audio (or none), its index (``moov``) before the media data so playback can start
before the download ends, and a duration in its header. Chrome's MediaRecorder WebM has
no duration and no cues (it cannot be seeked) and does not play on older iPhones; iPhone
HEVC does not play in Firefox, nor in Chrome without hardware decoding.
"""

import fractions
import logging
import struct
from dataclasses import dataclass

import av

log = logging.getLogger("app.testimonials")

MAX_SIDE = 1280  # the playable copy's longer side at most (phones record 1080p and more)
POSTER_AT_SECONDS = 1.0


class NotAVideo(ValueError):
    """The file is not a video we can decode; the message says why, in plain words."""


@dataclass
class Probe:
    container: str  # mp4 | mov | webm | other
    video_codec: str
    audio_codec: str | None
    duration: float | None  # from the header; None when the header has none (Chrome WebM)
    measured_duration: float  # from the packets' timestamps
    width: int
    height: int
    rotation: int  # degrees the player turns the picture (display matrix)
    pix_fmt: str | None
    index_first: bool  # MP4/MOV: moov before mdat

    @property
    def plays_everywhere(self):
        return (
            self.container == "mp4"
            and self.video_codec == "h264"
            and self.audio_codec in (None, "aac")
            and self.index_first
            and self.duration is not None
            and self.pix_fmt in ("yuv420p", "yuvj420p")
        )


def sniff_container(head):
    """The container a file really is, from its first bytes (never trust the name)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if len(head) >= 8 and head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mov"
    return None


def index_first(path):
    """True when the MP4/MOV's ``moov`` box comes before its ``mdat`` (faststart)."""
    with open(path, "rb") as f:
        while True:
            header = f.read(8)
            if len(header) < 8:
                return False
            size, kind = struct.unpack(">I4s", header)
            if kind == b"moov":
                return True
            if kind == b"mdat":
                return False
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            elif size == 0:
                return False
            f.seek(size - 8, 1)


def _open(path):
    try:
        return av.open(path, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise NotAVideo(f"the file is not a video we can read ({exc.strerror or exc})") from None


def probe(path):
    with open(path, "rb") as f:
        head = f.read(16)
    container = sniff_container(head) or "other"
    with _open(path) as source:
        if not source.streams.video:
            raise NotAVideo("the file has no picture (no video track)")
        stream = source.streams.video[0]
        audio = source.streams.audio[0] if source.streams.audio else None
        first, last_end = None, 0.0
        try:
            for packet in source.demux(*[s for s in (stream, audio) if s is not None]):
                if packet.pts is None or packet.time_base is None:
                    continue
                end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                last_end = max(last_end, end)
                if first is None and packet.stream is stream:
                    for frame in packet.decode():
                        first = frame
                        break
        except av.error.FFmpegError as exc:
            if first is None:
                raise NotAVideo(f"the video cannot be decoded ({exc.strerror or exc})") from None
            log.info("video read stopped early at %.1fs: %s", last_end, exc)
        if first is None:
            raise NotAVideo("the video has no picture that can be decoded")
        duration = source.duration / 1_000_000 if source.duration else None
        return Probe(
            container=container,
            video_codec=stream.codec_context.name,
            audio_codec=audio.codec_context.name if audio is not None else None,
            duration=duration,
            measured_duration=round(last_end, 3),
            width=first.width,
            height=first.height,
            rotation=int(first.rotation or 0) % 360,
            pix_fmt=stream.codec_context.pix_fmt,
            index_first=container in ("mp4", "mov") and index_first(path),
        )


def _even(n):
    return max(2, int(n) // 2 * 2)


def output_size(width, height, max_side=MAX_SIDE):
    scale = min(1.0, max_side / max(width, height))
    return _even(width * scale), _even(height * scale)


def make_playable(source_path, target_path, info):
    """Write an H.264/AAC MP4 with the index first (``+faststart``), timing and rotation kept."""
    width, height = output_size(info.width, info.height)
    with (
        _open(source_path) as source,
        av.open(target_path, "w", format="mp4", options={"movflags": "+faststart"}) as out,
    ):
        vin = source.streams.video[0]
        ain = source.streams.audio[0] if source.streams.audio else None
        rate = vin.average_rate or vin.guessed_rate or 30
        vout = out.add_stream("libx264", rate=rate)
        vout.width, vout.height, vout.pix_fmt = width, height, "yuv420p"
        vout.codec_context.time_base = fractions.Fraction(1, 90_000)
        vout.options = {"preset": "veryfast", "crf": "23", "profile": "high"}
        # A key frame every second: a player seeks to any second without decoding from the start.
        vout.codec_context.gop_size = max(1, int(round(float(rate))))
        if info.rotation:
            vout.set_display_rotation(info.rotation)
        aout = resampler = None
        if ain is not None:
            aout = out.add_stream("aac", rate=48_000)
            aout.layout = "stereo" if (ain.codec_context.channels or 1) > 1 else "mono"
            aout.bit_rate = 128_000
            resampler = av.AudioResampler(format="fltp", layout=aout.layout, rate=48_000)
        last_pts, samples = -1, 0
        for packet in source.demux(*[s for s in (vin, ain) if s is not None]):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                continue  # a damaged packet: skip it, keep the rest of the video
            for frame in frames:
                if packet.stream is vin:
                    pts = int(round(frame.time * 90_000)) if frame.time is not None else last_pts + 3000
                    if pts <= last_pts:
                        continue  # browsers' variable frame rate can repeat a timestamp
                    last_pts = pts
                    picture = frame.reformat(width=width, height=height, format="yuv420p")
                    picture.pts, picture.time_base = pts, fractions.Fraction(1, 90_000)
                    out.mux(vout.encode(picture))
                else:
                    for chunk in resampler.resample(frame):
                        chunk.pts, chunk.time_base = samples, fractions.Fraction(1, 48_000)
                        samples += chunk.samples
                        out.mux(aout.encode(chunk))
        out.mux(vout.encode(None))
        if aout is not None:
            for chunk in resampler.resample(None):
                chunk.pts, chunk.time_base = samples, fractions.Fraction(1, 48_000)
                samples += chunk.samples
                out.mux(aout.encode(chunk))
            out.mux(aout.encode(None))


ROTATE_FILTERS = {90: [("transpose", "clock")], 180: [("hflip", None), ("vflip", None)], 270: [("transpose", "cclock")]}


def _upright(frame, stream, rotation):
    filters = ROTATE_FILTERS.get(rotation)
    if not filters:
        return frame
    graph = av.filter.Graph()
    node = graph.add_buffer(template=stream)
    first = node
    for name, argument in filters:
        step = graph.add(name, argument) if argument else graph.add(name)
        node.link_to(step)
        node = step
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    first.push(frame)
    return sink.pull()


def make_poster(source_path, target_path, info, at=POSTER_AT_SECONDS):
    """A JPEG of the picture about one second in (or a third in, for a shorter video), upright."""
    duration = info.duration or info.measured_duration or 0
    target = min(at, duration / 3) if duration else 0
    chosen = None
    with _open(source_path) as source:
        stream = source.streams.video[0]
        for frame in source.decode(stream):
            chosen = frame
            if frame.time is not None and frame.time >= target:
                break
        if chosen is None:
            raise NotAVideo("the video has no picture that can be decoded")
        picture = _upright(chosen, stream, info.rotation)
    width, height = output_size(picture.width, picture.height, max_side=960)
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
    encoder.time_base = fractions.Fraction(1, 25)
    encoder.options = {"qscale": "3"}
    image = picture.reformat(width=width, height=height, format="yuvj420p")
    image.pts = 0
    data = b"".join(bytes(p) for p in encoder.encode(image) + encoder.encode(None))
    with open(target_path, "wb") as f:
        f.write(data)
    return width, height
