"""Request and response shapes of the calls API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.calls.tables import AttemptResult, OutcomeKind
from app.isodate import IsoDateTime


class OutcomeIn(BaseModel):
    kind: OutcomeKind
    appointment_id: int | None = None
    new_start_at: IsoDateTime | None = None
    clinic_code: str | None = Field(default=None, max_length=32)
    language: str | None = Field(default=None, max_length=40)
    text: str | None = Field(default=None, max_length=500)


class OutcomesIn(BaseModel):
    outcomes: list[OutcomeIn]
    complete: bool = False
    # Take the call back first from a colleague who took it after this navigator's lease
    # lapsed (refused once the colleague has recorded anything).
    take_back: bool = False


class LeaseOut(BaseModel):
    """The answer to a call screen's heartbeat."""

    call_id: int
    lease_expires_at: datetime
    # How long the hold has left on the server's clock: the page times its warning from this,
    # never from the workstation's own clock (which may be minutes or days out).
    lease_seconds_left: int
    renew_every_seconds: int


class AttemptIn(BaseModel):
    result: AttemptResult
    # How the patient was tried; left out, the phone rung first (mobile, then landline).
    channel: Literal["mobile", "landline", "video_relay", "sms", "email", "letter"] | None = None
    # With result "call_back": when the patient asked to be called (with its offset).
    callback_at: IsoDateTime | None = None


class IdentityIn(BaseModel):
    confirmed: bool


class NoteIn(BaseModel):
    body: str = Field(max_length=4000)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    call_id: int
    body: str
    written_by: int
    written_at: datetime


class ReassignIn(BaseModel):
    navigator_id: int


class OutcomeChangeOut(BaseModel):
    """The old version of an outcome corrected after its call was completed."""

    model_config = ConfigDict(from_attributes=True)

    outcome_id: int
    change: str
    old_kind: str
    old_appointment_id: int | None
    old_detail: dict[str, Any]
    old_recorded_by: int
    old_recorded_at: datetime
    changed_by: int
    changed_at: datetime


class TomorrowCall(BaseModel):
    call_id: int
    due_at: datetime | None
    attempts: int
    callback_asked: bool


class TomorrowOut(BaseModel):
    day: date
    calls: list[TomorrowCall]


class DocumentIn(BaseModel):
    body: str
    title: str | None = Field(default=None, max_length=200)


class CallSummary(BaseModel):
    """A call as navigators see it. The priority is left out on purpose: it is derived from
    the raw risk probability, which navigators never see (they see the band and reasons)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    queue_date: date
    status: str
    attempts: int
    next_attempt_at: datetime | None
    taken_by: int | None
    lease_expires_at: datetime | None
    completed_by: int | None
    completed_at: datetime | None


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    result: str
    channel: str
    attempted_at: datetime
    attempted_by: int
    identity: str | None = None
    callback_at: datetime | None = None


class OutcomeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    appointment_id: int | None
    kind: str
    detail: dict[str, Any]
    recorded_by: int
    recorded_at: datetime


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    version: int
    title: str
    body: str
    created_at: datetime
    created_by: int | None


class DocumentSaved(DocumentOut):
    """The document's current version after a save through the API."""

    changed: bool = Field(
        description=(
            "True when the save made this new version (201); false when the text and title "
            "were the same as the current version's, so nothing was saved and the current "
            "version is returned (200)."
        )
    )


class RenderedDocument(BaseModel):
    id: int
    slug: str
    version: int
    title: str
    html: str


class AppointmentOnCall(BaseModel):
    id: int
    start_at: datetime
    clinic_code: str
    site: str | None
    specialty: str
    sensitive: bool
    covered_by_this_call: bool
    risk_band: str | None
    risk_reasons: list[str]
    # The PAS cancelled it after this call was queued (the feed or an import said so).
    cancelled_in_pas_since_queued: bool = False


class PatientOnCall(BaseModel):
    id: int
    given_name: str | None
    family_name: str | None
    birth_date: date
    mobile_phone: str | None
    landline_phone: str | None
    mobile_phone_invalid: bool
    landline_phone_invalid: bool
    preferred_language: str
    interpreter_needed: bool
    communication_needs: list[str]
    learning_disability: bool
    sms_opt_out: bool


class CallDetail(BaseModel):
    call: CallSummary
    patient: PatientOnCall
    eligibility_reasons: list[str]
    appointments: list[AppointmentOnCall]
    script: list[RenderedDocument]
    sop: RenderedDocument
    attempts: list[AttemptOut]
    outcomes: list[OutcomeOut]
    notes: list[NoteOut] = []
    corrections: list[OutcomeChangeOut] = []


class CallHistory(BaseModel):
    call: CallSummary
    attempts: list[AttemptOut]
    outcomes: list[OutcomeOut]
    notes: list[NoteOut] = []
    corrections: list[OutcomeChangeOut] = []


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    patient_id: int
    appointment_id: int | None
    source: str
    detail: str
    created_at: datetime


class QueueView(BaseModel):
    queue_date: date
    # The team's day (the whole queue) and this navigator's own, shown apart.
    counts: dict[str, int]
    mine: dict[str, int] = {}
    callbacks_due: int
    next_call: CallSummary | None
    my_current_call: CallSummary | None
    open_tasks: int
    tasks: list[TaskOut]


class NavigatorLoad(BaseModel):
    user_id: int
    completed: int
    unreachable: int
    in_progress: int


class Overview(BaseModel):
    queue_date: date
    capacity: int
    navigators_on_duty: int
    calls_per_navigator_per_day: int
    calls_queued_today: int
    counts: dict[str, int]
    assignments_today: dict[str, int]
    call_arm_waiting_beyond_capacity: int
    outcomes_today: dict[str, int]
    by_navigator: list[NavigatorLoad]
    open_tasks: int
