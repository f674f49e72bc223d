"""Swagger UI at ``/docs`` served from the package, so it works without internet.

FastAPI's default ``/docs`` page loads Swagger UI from the jsdelivr CDN, which an air-gapped
deployment (or a laptop on a train) cannot reach: the page stays blank. The assets here are
swagger-ui-dist 5.35.0 from npm (``npm pack swagger-ui-dist@5.35.0``), unmodified: only
``swagger-ui-bundle.js``, ``swagger-ui.css``, ``favicon-32x32.png`` and their licence files.
To update, copy those files from a newer package and change ``SWAGGER_UI_VERSION``.

ReDoc is not served (``redoc_url=None`` in ``create_app``): FastAPI's ``/redoc`` needs a CDN and
Google Fonts too, and one browsable UI that always works beats a second that often does not.

``persistAuthorization`` stays off: with it, Swagger UI keeps the pasted API key in the
browser's ``localStorage`` across restarts, where any other page script or the next user of a
shared machine can read it, and our keys may carry the ``admin`` scope (erasure). Pasting the key
again after a reload is the smaller cost.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
ASSETS = Path(__file__).parent / "static" / "swagger-ui"
DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install_docs(app: FastAPI) -> None:
    """Serves Swagger UI at ``/docs`` with its assets under ``/docs/assets``; none of these
    routes is in the OpenAPI document. Call on an app created with ``docs_url=None``."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS), name="swagger-ui-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Behind a proxy that strips a prefix, every URL the page loads must carry it.
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT_URL}",
            init_oauth=app.swagger_ui_init_oauth,
            swagger_ui_parameters=app.swagger_ui_parameters,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
