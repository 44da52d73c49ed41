"""SMS length: characters, encoding and segments (pure; mirrored in static/template-editor.js).

A text made only of GSM-7 characters travels 7 bits a character: 160 in one message,
153 per segment once it is split (the rest of each segment carries the concatenation
header). The GSM-7 extension characters (``^ { } \\ [ ~ ] | €`` and form feed) take an
escape plus the character: two septets each, and a pair is never split across segments.
One character outside GSM-7 (an emoji, a curly quote) switches the whole text to UCS-2:
70 UTF-16 code units in one message, 67 per segment; a character outside the Basic
Multilingual Plane (most emoji) takes two units and is never split either.
"""

from dataclasses import dataclass, field

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

LIMITS = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


@dataclass(frozen=True)
class SmsCount:
    encoding: str  # GSM-7 | UCS-2
    characters: int  # what a person counts (code points)
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int
    per_segment: int  # capacity of each segment at this length
    remaining: int  # units left in the last segment before another one starts
    non_gsm: tuple = field(default=())  # the characters that forced UCS-2, first seen first

    def to_dict(self):
        return {
            "encoding": self.encoding,
            "characters": self.characters,
            "units": self.units,
            "segments": self.segments,
            "per_segment": self.per_segment,
            "remaining": self.remaining,
            "non_gsm": list(self.non_gsm),
        }


def _unit_sizes(text):
    """(encoding, [units per character]) for a text."""
    non_gsm = []
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION and char not in non_gsm:
            non_gsm.append(char)
    if not non_gsm:
        return "GSM-7", [2 if char in GSM7_EXTENSION else 1 for char in text], ()
    return "UCS-2", [2 if ord(char) > 0xFFFF else 1 for char in text], tuple(non_gsm)


def sms_count(text):
    """Count an SMS body the way carriers split it."""
    text = text or ""
    encoding, sizes, non_gsm = _unit_sizes(text)
    single, multi = LIMITS[encoding]
    units = sum(sizes)
    if units == 0:
        return SmsCount(encoding, 0, 0, 0, single, single, non_gsm)
    if units <= single:
        return SmsCount(encoding, len(text), units, 1, single, single - units, non_gsm)
    # Split like a phone does: a two-unit character moves whole into the next segment.
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return SmsCount(encoding, len(text), units, segments, multi, multi - used, non_gsm)
