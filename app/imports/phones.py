"""UK telephone numbers normalised to E.164 (+44...), and whether a number is a mobile.

A deliberately small rule set rather than a full numbering-plan library: the PAS holds UK
numbers only, and anything that is not a plausible UK number is flagged rather than stored.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-().]")
# UK national significant numbers are 10 digits (a few legacy areas have 9) after the 0.
_NATIONAL = re.compile(r"^[1-9]\d{8,9}$")


def normalise_uk_phone(raw: str) -> str | None:
    """The number in E.164 form, or None when it is not a plausible UK number."""
    text = _SEPARATORS.sub("", raw)
    if text.startswith("+44"):
        national = text[3:]
    elif text.startswith("0044"):
        national = text[4:]
    elif text.startswith("44") and len(text) == 12:
        national = text[2:]
    elif text.startswith("0"):
        national = text[1:]
    else:
        return None
    national = national.removeprefix("0")  # "+44 (0)7700 ..." written with the trunk 0
    if not _NATIONAL.match(national):
        return None
    if national.startswith("7") and len(national) != 10:
        return None
    return f"+44{national}"


def is_uk_mobile(e164: str) -> bool:
    """07 numbers except 070 (personal numbers) and 076 (pagers)."""
    return e164.startswith("+447") and not e164.startswith(("+4470", "+4476"))
