"""Segment counts shown to template editors: GSM-7 160/153, UCS-2 70/67."""

from __future__ import annotations

import pytest

from app.sms.segments import count_segments


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", "GSM-7", 0),
        ("a" * 160, "GSM-7", 1),
        ("a" * 161, "GSM-7", 2),
        ("a" * 306, "GSM-7", 2),
        ("a" * 307, "GSM-7", 3),
        ("€" * 80, "GSM-7", 1),  # extension characters cost two septets
        ("€" * 81, "GSM-7", 2),
        ("[" * 77 + "a", "GSM-7", 1),
        ("ą" * 70, "UCS-2", 1),  # one Polish letter outside GSM-7 switches the whole text
        ("ą" * 71, "UCS-2", 2),
        ("a" * 133 + "ą", "UCS-2", 2),
        ("ą" * 134, "UCS-2", 2),
        ("ą" * 135, "UCS-2", 3),
        ("👍" * 35, "UCS-2", 1),  # an emoji is two UTF-16 units
        ("👍" * 36, "UCS-2", 2),
    ],
)
def test_segments_follow_the_gsm_and_ucs2_limits(text: str, encoding: str, segments: int) -> None:
    info = count_segments(text)
    assert (info.encoding, info.segments) == (encoding, segments)


def test_an_escaped_character_is_never_split_across_parts() -> None:
    # 306 septets would fit two parts, but the two-septet euro sign after 152 plain ones
    # cannot straddle the 153 boundary, so it moves and the text needs a third part.
    info = count_segments("a" * 152 + "€" + "a" * 152)
    assert info.units == 306
    assert info.segments == 3
