"""``/v1/audiences``: saved filters over the scores, their counts, members and CSV export.

Scopes: reading (counts, members, exports, previews) needs ``read``, like every score read;
saving and deleting need ``admin``: an audience is shared configuration that the workers
count and that can send notifications to the operator's webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import StreamingResponse

from service.api.deps import AdminKey, ReadKey, SessionDep, SettingsDep
from service.api.params import AudiencePath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.audiences import service
from service.audiences.schemas import (
    MAX_PAGE,
    AudienceCount,
    AudienceCreate,
    AudienceFilters,
    AudienceList,
    AudienceRead,
    MemberPage,
)

router = domain_router(prefix="/v1/audiences", tags=["audiences"])


@router.post(
    "",
    status_code=201,
    operation_id="create_audience",
    summary="Save an audience",
    responses=error_responses(401, 403, 409, 422),
)
def create_audience(
    body: AudienceCreate, session: SessionDep, settings: SettingsDep, _key: AdminKey
) -> AudienceRead:
    """Save named filters over the champion's stored scores (value tier, clv, churn risk,
    purchase probability, next order date, RFM segment, risk flags, profile attributes, cold
    start; all AND-ed), with optional thresholds for the `audience.count_crossed` webhook.
    Returns it with its count now. 409 when the name is taken."""
    return service.create(session, settings, body)


@router.post(
    "/preview",
    operation_id="preview_audience",
    summary="Count unsaved filters",
    responses=error_responses(401, 403, 422),
)
def preview_audience(
    body: AudienceFilters, session: SessionDep, settings: SettingsDep, _key: ReadKey
) -> AudienceCount:
    """How many customers the filters hold now and the revenue they represent, without
    saving them."""
    return service.count(session, settings, body)


@router.get(
    "",
    operation_id="list_audiences",
    summary="The saved audiences",
    responses=error_responses(401, 403),
)
def list_audiences(session: SessionDep, _key: ReadKey) -> AudienceList:
    """Every saved audience's definition, oldest first; GET one for its count."""
    return service.every(session)


@router.get(
    "/{audience_id:int}",
    operation_id="get_audience",
    summary="An audience with its count and revenue",
    responses=error_responses(401, 403, 404, 422),
)
def get_audience(
    audience_id: AudiencePath, session: SessionDep, settings: SettingsDep, _key: ReadKey
) -> AudienceRead:
    """The definition, how many customers it holds now and the revenue they represent (the
    sum of their clv as served), from the champion's stored scores."""
    return service.read(session, settings, audience_id)


@router.delete(
    "/{audience_id:int}",
    status_code=204,
    operation_id="delete_audience",
    summary="Delete an audience",
    responses=error_responses(401, 403, 404, 422),
)
def delete_audience(audience_id: AudiencePath, session: SessionDep, _key: AdminKey) -> Response:
    service.delete(session, audience_id)
    return Response(status_code=204)


@router.get(
    "/{audience_id:int}/members",
    operation_id="list_audience_members",
    summary="An audience's members, a page at a time",
    responses=error_responses(401, 403, 404, 422),
)
def list_members(
    audience_id: AudiencePath,
    session: SessionDep,
    settings: SettingsDep,
    _key: ReadKey,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Members per page.")] = 100,
    after: Annotated[
        str | None,
        Query(min_length=1, max_length=128, description="next_after of the previous page."),
    ] = None,
) -> MemberPage:
    """Members in customer id order with their score's main fields; follow `next_after` for
    the next page. Each page reads the scores as they are then."""
    return service.member_page(session, settings, audience_id, after, limit)


@router.get(
    "/{audience_id:int}/export.csv",
    operation_id="export_audience",
    summary="An audience's members as CSV",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per member."},
        **error_responses(401, 403, 404, 422),
    },
)
def export_audience(
    audience_id: AudiencePath,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _key: ReadKey,
) -> StreamingResponse:
    """Every member, streamed as CSV with the columns of a member page (risk flags joined by
    `;`), read in chunks of 5,000 so that any size streams in bounded memory."""
    filters = service.export(session, audience_id)
    chunks = service.csv_chunks(request.app.state.session_factory, settings, filters)
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audience-{audience_id}.csv"'},
    )
