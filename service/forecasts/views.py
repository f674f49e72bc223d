"""``/v1/forecasts``: queue a forecast of the shop's revenue and orders, read it and its chart."""

from __future__ import annotations

from fastapi import Response, status

from service.api.deps import AdminKey, ReadKey, SessionDep
from service.api.params import ForecastPath
from service.api.responses import error_responses
from service.api.routing import domain_router
from service.forecasts import service
from service.forecasts.schemas import ForecastRead, ForecastRequest
from service.jobs.schemas import JobRead

router = domain_router(prefix="/v1", tags=["forecasts"])


@router.post(
    "/forecasts",
    operation_id="create_forecast",
    summary="Forecast revenue and orders (as a job)",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 409, 422),
)
def create_forecast(request: ForecastRequest, session: SessionDep, key: AdminKey) -> JobRead:
    """Queue a forecast of the shop's revenue and orders per day, week or month over
    `horizon_days` (up to 730), with 80% intervals, split into existing customers (bottom up
    from their stored scores) and customers not acquired yet (ETS on weekly acquisitions);
    `by=category` adds each category's revenue and units. Follow the job at
    `GET /v1/jobs/{id}`: its result's `forecast_id` names the forecast. 404 without a champion;
    409 before the champion's scores are stored."""
    return service.submit(session, request, key.name)


@router.get(
    "/forecasts/{forecast_id}.png",
    operation_id="get_forecast_chart",
    summary="A forecast, as a chart",
    responses={
        **error_responses(401, 403, 404, 422),
        200: {"content": {"image/png": {}}, "description": "Revenue per period."},
    },
    response_class=Response,
)
def get_forecast_chart(forecast_id: ForecastPath, session: SessionDep, _key: ReadKey) -> Response:
    """Revenue per period as it happened, then as forecast with its 80% interval and the part
    from customers not acquired yet. 404 for an unknown id."""
    return Response(service.chart(session, forecast_id), media_type="image/png")


@router.get(
    "/forecasts/{forecast_id}",
    operation_id="get_forecast",
    summary="A forecast",
    responses=error_responses(401, 403, 404, 422),
)
def get_forecast(forecast_id: ForecastPath, session: SessionDep, _key: ReadKey) -> ForecastRead:
    """Per period and in total: expected revenue and orders with their 80% intervals, for
    existing and new customers and together; per category with `by=category`; how it was
    computed. 404 for an unknown id (a forecast exists once its job has succeeded)."""
    return service.get(session, forecast_id)
