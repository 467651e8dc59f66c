"""Task worklist API shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TaskItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    status: str
    patient_id: int
    appointment_id: int | None
    # The call to open for this task (the one it came from, else the patient's latest call
    # the reader may see); None when there is none.
    call_id: int | None = None
    source: str
    detail: str
    created_at: datetime
    completed_at: datetime | None
    completed_by: int | None
    done_note: str | None
    # Until when the reader may undo "done" (None: not theirs to undo, or too late).
    undo_until: datetime | None = None


class TaskDoneIn(BaseModel):
    note: str | None = Field(default=None, max_length=1000)
