"""Is this upload a real raster image? Reads the file's own structure (not its name or
the browser's content type): PNG, JPEG or WebP, with its pixel size. SVG is refused — it
can carry scripts — and so is anything else.
"""

import struct
import zlib

MAX_LOGO_BYTES = 512 * 1024
MAX_LOGO_PIXELS = 4096  # per side


class ImageInvalid(ValueError):
    pass


def sniff_image(data):
    """``(content type, width, height)`` of a PNG, JPEG or WebP image, or ImageInvalid."""
    if not data:
        raise ImageInvalid("the file is empty")
    if len(data) > MAX_LOGO_BYTES:
        raise ImageInvalid(f"the file is {len(data) // 1024} KB; a logo may be at most {MAX_LOGO_BYTES // 1024} KB")
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind, size = "image/png", _png_size(data)
    elif data.startswith(b"\xff\xd8\xff"):
        kind, size = "image/jpeg", _jpeg_size(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind, size = "image/webp", _webp_size(data)
    else:
        raise ImageInvalid("this is not a PNG, JPEG or WebP image (SVG and other formats are not accepted)")
    width, height = size
    if not (0 < width <= MAX_LOGO_PIXELS and 0 < height <= MAX_LOGO_PIXELS):
        raise ImageInvalid(f"the image is {width}×{height} pixels; each side must be 1 to {MAX_LOGO_PIXELS}")
    return kind, width, height


def _png_size(data):
    # The first chunk must be a complete IHDR with a correct checksum.
    if len(data) < 33 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
        raise ImageInvalid("the PNG file is damaged (no image header)")
    if zlib.crc32(data[12:29]) != struct.unpack(">I", data[29:33])[0]:
        raise ImageInvalid("the PNG file is damaged (bad header checksum)")
    if b"IEND" not in data[-12:]:
        raise ImageInvalid("the PNG file is cut short")
    return struct.unpack(">II", data[16:24])


def _jpeg_size(data):
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            raise ImageInvalid("the JPEG file is damaged")
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        # Start-of-frame markers (baseline, progressive, …) carry the size.
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                raise ImageInvalid("the JPEG file is cut short")
            return width, height
        i += 2 + length
    raise ImageInvalid("the JPEG file has no image frame")


def _webp_size(data):
    if struct.unpack("<I", data[4:8])[0] + 8 != len(data) or len(data) < 30:
        raise ImageInvalid("the WebP file is damaged or cut short")
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    raise ImageInvalid("the WebP file is damaged")
