"""Routes that parse JSON bodies exactly.

Starlette's ``request.json()`` turns ``19.99`` into a float, and a 17-digit amount into a rounded
one. Parsing floats as ``Decimal`` keeps every amount exactly as sent. The same parser refuses
what the JSON standard refuses but Python accepts (``NaN``, ``Infinity``), and reports invalid UTF-8
and absurd nesting as a JSON error (422) instead of letting them surface as a 500.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_exact(body: bytes) -> Any:
    try:
        return json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise json.JSONDecodeError(str(error) or "invalid JSON", "", 0) from None


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
