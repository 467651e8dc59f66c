"""Audit action codes in plain words, for the audit page and its CSV (a DPO reads these).

Every code written anywhere in `app/` needs words here: `tests/auth/test_audit_words.py`
scans the code for the actions it records and fails on one without words. A code missing at
run time (an old row from a retired action) is shown as it was recorded.
"""

from __future__ import annotations

ACTION_WORDS: dict[str, str] = {
    # Signing in and accounts
    "sign_in.succeeded": "Signed in",
    "sign_in.failed": "Failed to sign in",
    "sign_out": "Signed out",
    "user.created": "Created an account",
    "user.role_changed": "Changed an account's role",
    "user.activated": "Reactivated an account",
    "user.deactivated": "Deactivated an account",
    "user.unlocked": "Unlocked an account",
    "user.password_set": "Set an account's password",
    "user.password_changed": "Changed their own password",
    # The audit log itself
    "audit.exported": "Downloaded audit log entries (CSV)",
    "audit.patient_filtered": "Looked up the audit entries about one patient",
    # Reading patient records
    "patient.viewed": "Opened a patient's record",
    "patient.listed": "Listed patients",
    "patient.found_by_search": "Found a patient by searching",
    "patient.viewed_via_call": "Opened a patient's record from a call",
    "patient.calls_viewed": "Viewed a patient's calls",
    "patient.history_viewed": "Viewed a patient's call history",
    "patient.messages_viewed": "Viewed a patient's text messages",
    "appointment.viewed": "Opened an appointment",
    "appointment.listed": "Listed appointments",
    "appointment.messages_viewed": "Viewed an appointment's text messages",
    "sms.history_viewed": "Viewed text message history",
    "queue.viewed": "Viewed a call queue",
    "calls.history_listed": "Listed their past calls",
    "call.viewed": "Opened a call",
    "call.history_viewed": "Viewed a call's history",
    "booking_requests.viewed": "Viewed rebooking and cancellation requests",
    "booking_requests.exported": "Downloaded rebooking and cancellation requests",
    # Changing patient details
    "patient.call_logged": "Logged a call from a patient",
    "patient.phone_corrected": "Corrected a patient's phone number",
    # Calls
    "call_queue.built": "Built the day's call queue",
    "call.taken": "Took a call from the queue",
    "call.taken_back": "Took back a call a colleague had picked up",
    "call.attempt_recorded": "Recorded a call attempt",
    "call.identity_checked": "Checked the patient's identity on a call",
    "call.note_added": "Added a note to a call",
    "call.released": "Put a call back in the queue",
    "call.reassigned": "Reassigned a call to another navigator",
    "call.outcome_recorded": "Recorded a call outcome",
    "call.outcome_corrected": "Corrected a call outcome",
    "call.outcome_undone": "Undid a call outcome",
    "call.completed": "Completed a call",
    "call_document.edited": "Saved a new version of a call script or SOP",
    "call_document.reverted": "Restored an earlier version of a call script or SOP",
    "call_document.created": "Added a specialty call script",
    # Tasks and bookings
    "navigator_task.done": "Marked a follow-up task done",
    "navigator_task.undone": "Reopened a follow-up task",
    "booking_request.withdrawn": "Withdrew a rebooking or cancellation request",
    # Text messages, feeds and models
    "sms.template_saved": "Saved a text message template",
    "sms.template_restored": "Restored an earlier text message template",
    "feed.replay": "Replayed a PAS feed message",
    "feed.dismiss": "Dismissed a PAS feed message",
    "risk_model.activated": "Made a risk model the active one",
}


def action_words(code: str) -> str:
    """The action in words; an unknown code as recorded."""
    return ACTION_WORDS.get(code, code)
