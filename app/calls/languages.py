"""Interpreter languages by name: navigators choose a name, the outcome stores its ISO code.

The languages most asked for by outpatients in English trusts (ISO 639-1 where there is one,
ISO 639-3 otherwise, e.g. Sylheti). A name or a code typed by hand is accepted either way.
"""

from __future__ import annotations

LANGUAGES: dict[str, str] = {
    "ar": "Arabic",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "cs": "Czech",
    "de": "German",
    "el": "Greek",
    "es": "Spanish",
    "fa": "Persian (Farsi)",
    "fr": "French",
    "gu": "Gujarati",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "it": "Italian",
    "ku": "Kurdish",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "ml": "Malayalam",
    "ne": "Nepali",
    "pa": "Punjabi",
    "pl": "Polish",
    "ps": "Pashto",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sk": "Slovak",
    "so": "Somali",
    "sq": "Albanian",
    "syl": "Sylheti",
    "ta": "Tamil",
    "ti": "Tigrinya",
    "tr": "Turkish",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "yue": "Cantonese",
    "zh": "Mandarin Chinese",
}
_BY_NAME = {name.lower(): code for code, name in LANGUAGES.items()}
_BY_NAME.update({"farsi": "fa", "persian": "fa", "mandarin": "zh", "chinese": "zh"})


def language_code(text: str | None) -> str | None:
    """The ISO code for a language name or code typed or chosen ("Polish", "pl"); None when it
    is neither."""
    typed = (text or "").strip().lower()
    if typed in LANGUAGES:
        return typed
    return _BY_NAME.get(typed)


def language_name(code: str | None) -> str:
    """The language's name for a stored code (the code itself when it is not on the list)."""
    return LANGUAGES.get((code or "").lower(), code or "")


def choices() -> list[tuple[str, str]]:
    """(code, name) by name, for a select list."""
    return sorted(LANGUAGES.items(), key=lambda item: item[1])
