"""UK phone normalisation: common ways of writing a number, and what is refused."""

from __future__ import annotations

import pytest

from app.imports.phones import is_uk_mobile, normalise_uk_phone


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("07700 900123", "+447700900123"),
        ("07700-900-123", "+447700900123"),
        ("+44 7700 900123", "+447700900123"),
        ("+44 (0)7700 900123", "+447700900123"),
        ("0044 7700 900123", "+447700900123"),
        ("447700900123", "+447700900123"),
        ("(0113) 496 0000", "+441134960000"),
        ("07700 9001", None),
        ("7700900123", None),
        ("ring the ward", None),
        ("+1 202 555 0100", None),
    ],
)
def test_uk_numbers_are_normalised_to_e164_and_others_refused(
    raw: str, expected: str | None
) -> None:
    assert normalise_uk_phone(raw) == expected


def test_only_07_numbers_outside_070_and_076_are_mobiles() -> None:
    assert is_uk_mobile("+447700900123")
    assert not is_uk_mobile("+441134960000")
    assert not is_uk_mobile("+447012345678")
