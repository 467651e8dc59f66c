"""How many SMS segments a text costs: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67).

GSM 03.38 basic characters cost one septet, extension-table characters (such as the euro sign
and square brackets) two, because they travel behind an escape. A text with any character
outside both tables is sent as UCS-2, counted in UTF-16 code units (an emoji is two). Long
texts are split into parts that each carry a 6-byte concatenation header, hence 153 and 67.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # capacity of each segment at this length

    def as_dict(self) -> dict[str, object]:
        return {
            "encoding": self.encoding,
            "units": self.units,
            "segments": self.segments,
            "per_segment": self.per_segment,
        }


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def count_segments(text: str) -> SegmentInfo:
    if is_gsm7(text):
        units = sum(2 if char in GSM7_EXTENSION else 1 for char in text)
        return _split("GSM-7", units, GSM7_SINGLE, GSM7_PART, text, gsm=True)
    units = len(text.encode("utf-16-le")) // 2
    return _split("UCS-2", units, UCS2_SINGLE, UCS2_PART, text, gsm=False)


def _split(
    encoding: str, units: int, single: int, part: int, text: str, *, gsm: bool
) -> SegmentInfo:
    if units <= single:
        return SegmentInfo(encoding, units, 1 if units else 0, single)
    # A character is never split across parts: an escaped GSM-7 character (2 septets) or a
    # surrogate pair (2 UTF-16 units) that would straddle a boundary moves to the next part.
    segments, used = 1, 0
    for char in text:
        cost = (2 if char in GSM7_EXTENSION else 1) if gsm else len(char.encode("utf-16-le")) // 2
        if used + cost > part:
            segments += 1
            used = 0
        used += cost
    return SegmentInfo(encoding, units, segments, part)
