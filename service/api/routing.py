"""Routes that parse JSON bodies with ``service.exact_json``: amounts stay exact, and NaN,
invalid UTF-8 or absurd nesting are a 422 (FastAPI reports ``JSONDecodeError`` so), not a 500."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from service.exact_json import loads_exact


class ExactJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_exact(await self.body())
        return self._json


class ExactJSONRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def exact_json_handler(request: Request) -> Response:
            return await handler(ExactJSONRequest(request.scope, request.receive))

        return exact_json_handler


def domain_router(**kwargs: Any) -> APIRouter:
    """Every domain router is built here, so every route parses JSON the same exact way."""
    return APIRouter(route_class=ExactJSONRoute, **kwargs)
