"""A job as the API shows it: at ``/v1/jobs/{id}`` and from every route that queues one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # read straight from the Job row

    id: int = Field(description="The job's id.")
    kind: str = Field(description="What it does, e.g. train.")
    status: str = Field(description="queued, running, succeeded, failed or cancelled.")
    progress: float = Field(description="Fraction done, 0 to 1.")
    stage: str = Field(description="What it is doing now.")
    params: dict[str, Any] = Field(description="What was asked.")
    result: dict[str, Any] | None = Field(description="The outcome, e.g. the new version.")
    error: str | None = Field(description="Why it failed.")
    cancel_requested: bool = Field(description="Whether a cancel was asked for.")
    created_by: str = Field(description="Who asked for it.")
    created_at: datetime = Field(description="When it was asked for.")
    started_at: datetime | None = Field(description="When a worker started it.")
    finished_at: datetime | None = Field(description="When it ended.")
