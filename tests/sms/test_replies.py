"""Parsing patients' replies: numbers and words, any case, spaces and punctuation."""

from __future__ import annotations

import pytest

from app.sms.service import ReplyIntent, parse_reply


@pytest.mark.parametrize(
    ("body", "intent"),
    [
        ("1", ReplyIntent.CONFIRM),
        (" 1 ", ReplyIntent.CONFIRM),
        ("1.", ReplyIntent.CONFIRM),
        ("1 thank you", ReplyIntent.CONFIRM),
        ("confirm", ReplyIntent.CONFIRM),
        ("CONFIRMED!!", ReplyIntent.CONFIRM),
        ("ok", ReplyIntent.CONFIRM),
        ("I will attend", ReplyIntent.CONFIRM),
        ("2", ReplyIntent.CANCEL),
        ("2 please", ReplyIntent.CANCEL),
        ("Cancel appointment", ReplyIntent.CANCEL),
        ("please cancel", ReplyIntent.CANCEL),
        ("cant come", ReplyIntent.CANCEL),
        ("Can't   attend.", ReplyIntent.CANCEL),
        ("3", ReplyIntent.REBOOK),
        ("rearrange", ReplyIntent.REBOOK),
        ("Reschedule please", ReplyIntent.REBOOK),
        ("new date?", ReplyIntent.REBOOK),
        ("STOP", ReplyIntent.OPT_OUT),
        ("Stop.", ReplyIntent.OPT_OUT),
        ("cancel", ReplyIntent.OPT_OUT),  # CANCEL alone is Twilio's opt-out keyword
        (" CANCEL ", ReplyIntent.OPT_OUT),
        ("stopall", ReplyIntent.OPT_OUT),
        ("revoke", ReplyIntent.OPT_OUT),
        ("quit", ReplyIntent.OPT_OUT),
        ("start", ReplyIntent.OPT_IN),
        ("YES", ReplyIntent.OPT_IN),
        ("unstop", ReplyIntent.OPT_IN),
        ("help", ReplyIntent.HELP),
        ("INFO", ReplyIntent.HELP),
        ("12", ReplyIntent.OTHER),
        ("1 or 2", ReplyIntent.OTHER),
        ("stop sending me the wrong name", ReplyIntent.OTHER),
        ("What time is parking?", ReplyIntent.OTHER),
        ("", ReplyIntent.OTHER),
    ],
)
def test_replies_are_understood(body: str, intent: ReplyIntent) -> None:
    assert parse_reply(body) == intent
