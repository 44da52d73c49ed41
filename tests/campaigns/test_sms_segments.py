"""SMS character and segment counting (GSM-7 160/153, UCS-2 70/67)."""

import pytest

from app.campaigns.sms import sms_count


@pytest.mark.parametrize(
    ("text", "encoding", "units", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("Hi Ada, how is your mug?", "GSM-7", 24, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters count double
        ("€" * 81, "GSM-7", 162, 2),
        ("a" * 70, "GSM-7", 70, 1),
        ("é" * 160, "GSM-7", 160, 1),  # é is in the GSM-7 basic set
        ("ê" * 70, "UCS-2", 70, 1),  # ê is not
        ("ê" * 71, "UCS-2", 71, 2),
        ("a" * 134 + "ê", "UCS-2", 135, 3),
        ("😀" * 35, "UCS-2", 70, 1),  # astral characters take two UTF-16 units
        ("😀" * 36, "UCS-2", 72, 2),
    ],
)
def test_encoding_units_and_segments(text, encoding, units, segments):
    count = sms_count(text)
    assert (count.encoding, count.units, count.segments) == (encoding, units, segments)
    assert count.characters == len(text)


def test_an_extension_character_is_never_split_across_segments():
    # 152 septets, then € (2 septets) does not fit into segment one's 153: it moves whole.
    count = sms_count("a" * 152 + "€" + "a" * 152)
    assert count.units == 306
    assert count.segments == 3


def test_an_emoji_is_never_split_across_segments():
    count = sms_count("ê" * 66 + "😀" + "ê" * 66)
    assert count.units == 134
    assert count.segments == 3


def test_reports_the_characters_that_force_ucs2_and_what_is_left():
    count = sms_count("It’s great — thanks!")
    assert count.encoding == "UCS-2"
    assert count.non_gsm == ("’", "—")
    assert count.remaining == 70 - len("It’s great — thanks!")
    assert sms_count("a" * 150).remaining == 10
    assert sms_count("a" * 200).remaining == 153 - 47
