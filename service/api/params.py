"""The path parameters of the routes, declared once: each names one kind of resource, whichever
domain's router serves it (a customer's id is in the customers', portrait's and scores' paths)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from service.schemas import VERSION_ID, CustomerId

_ROW_ID = {"ge": 1, "le": 2**31 - 1}  # a serial primary key: past it is no row, not a 500

CustomerIdPath = Annotated[CustomerId, Path(description="The customer's id.")]
VersionPath = Annotated[str, Path(max_length=64, pattern=VERSION_ID, description="A version id.")]
JobPath = Annotated[int, Path(**_ROW_ID, description="A job id.")]
DecisionPath = Annotated[int, Path(**_ROW_ID, description="A decision's id.")]
AudiencePath = Annotated[int, Path(**_ROW_ID, description="The audience's id.")]
ForecastPath = Annotated[int, Path(**_ROW_ID, description="The forecast's id.")]
