"""Why a text failed, in words a manager can act on: Twilio's error codes and Navigator's own.

Twilio's codes are from its error dictionary (the 21xxx codes refuse a message when it is
sent, the 30xxx codes come back in delivery callbacks); the others are written by the
dispatcher. A code missing here is shown as "Other error" with its number.
"""

from __future__ import annotations

ERROR_WORDS: dict[str, str] = {
    # Refused when sent
    "21211": "Not a valid phone number (a data-quality task is opened)",
    "21408": "Texts to this country are not enabled on the account",
    "21610": "The patient has replied STOP: texts to this number are blocked",
    "21612": "The number cannot be reached from our sender",
    "21614": "Not a mobile number",
    "21617": "The text is too long to send",
    "20003": "The SMS account's credentials were refused",
    "20429": "Too many texts sent at once: the provider asked us to slow down",
    "20500": "The provider had an internal error",
    "20503": "The provider was unavailable",
    # Reported by delivery callbacks
    "30001": "The provider's queue was full",
    "30002": "The SMS account is suspended",
    "30003": "The phone was switched off or out of signal",
    "30004": "The text was blocked by the phone network or the patient",
    "30005": "The number is not in use",
    "30006": "A landline, or a network that cannot take texts",
    "30007": "Filtered by the phone network as unwanted",
    "30008": "Unknown error reported by the phone network",
    "30009": "Part of the text was lost",
    "30010": "The text cost more than the price limit",
    # Navigator's own
    "timeout": "The provider did not answer in time",
    "duplicate_sid": "The provider reported the same message twice",
    "500": "The provider had an internal error",
    "502": "The provider was unreachable",
    "503": "The provider was unavailable",
    "504": "The provider did not answer in time",
    "unknown": "No reason given",
}


def error_words(code: str | None) -> str:
    """The reason in words; an unlisted code as "Other error" with its code."""
    if not code:
        return ERROR_WORDS["unknown"]
    return ERROR_WORDS.get(code, f"Other error (code {code})")
