"""What the probes answer."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealthRead(BaseModel):
    status: str = Field(description="ok when the check passed.")


class ReadyRead(HealthRead):
    pending_events: int = Field(description="Stored events waiting for the worker.")
    stale_scores: int = Field(description="Customers waiting for a fresh score.")
    unexplained_scores: int = Field(
        description="Stored scores waiting for their attributions (computed after the scores)."
    )
    dead_letters: int = Field(
        description="Events set aside because applying them failed (clv events dead-letters)."
    )
