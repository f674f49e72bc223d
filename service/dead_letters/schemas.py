"""Public schemas of the dead letters."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from service.dead_letters.limits import MAX_LISTED


def _json_number(value: Any) -> Any:
    """JSON Schema's integer: 317 or 317.0, not true or "317" (which pydantic would take)."""
    if isinstance(value, bool | str):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Seq = Annotated[int, Field(ge=1, le=2**53 - 1), BeforeValidator(_json_number)]
"""Up to the largest integer a JSON number (a double) carries exactly: a larger one written as
a number arrives rounded, and may round past the column's 2^63 - 1."""


class DeadLetterRead(BaseModel):
    seq: int = Field(description="The event's sequence number (its place in the log).")
    event_id: str = Field(description="The client's id of the event.")
    customer_id: str = Field(description="The customer the event belongs to.")
    type: str = Field(description="The event's type.")
    occurred_at: datetime = Field(description="When the event happened.")
    error: str = Field(description="Why applying it failed.")
    failed_at: datetime = Field(description="When it was set aside.")


class DeadLetterPage(BaseModel):
    dead_letters: list[DeadLetterRead] = Field(description="By sequence number.")
    total: int = Field(description="Dead letters in all.")
    next_after: int | None = Field(
        description="Pass as `after` for the next page; null on the last page."
    )


class ListedDeadLetters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seqs: list[Seq] = Field(
        min_length=1, max_length=MAX_LISTED, description="Their sequence numbers."
    )

    @property
    def chosen(self) -> list[int] | None:
        return self.seqs


class AllDeadLetters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all: Literal[True] = Field(description="Every dead letter.")

    @property
    def chosen(self) -> list[int] | None:
        return None


DeadLetterSelection = ListedDeadLetters | AllDeadLetters
"""Which dead letters to act on: ``{"seqs": [...]}`` or ``{"all": true}``."""


class DeadLetterOutcome(BaseModel):
    seqs: list[int] = Field(description="The dead letters acted on (unknown numbers are skipped).")
