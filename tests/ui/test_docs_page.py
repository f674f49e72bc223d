"""/docs is served from the package, never a CDN, so Swagger UI works air-gapped. (The browser
test proves the page works; this proves what it loads, without a browser.)"""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from service.config import Settings
from service.main import create_app


def test_docs_loads_its_assets_from_the_service(client: TestClient) -> None:
    page = client.get("/docs")
    urls = re.findall(r"""(?:src|href)="([^"]+)\"""", page.text)
    assets = {url: client.get(url) for url in urls}

    assert page.status_code == 200
    assert sorted(urls) == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
    ]
    assert "url: '/openapi.json'" in page.text
    assert "http" not in page.text  # no absolute URL: nothing comes from another host
    assert {url: response.status_code for url, response in assets.items()} == dict.fromkeys(
        urls, 200
    )
    assert (
        assets["/docs/assets/swagger-ui-bundle.js"]
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # it would need a CDN: not served


def test_docs_behind_a_prefix_stripping_proxy_loads_everything_under_the_prefix(
    settings: Settings,
) -> None:
    with TestClient(create_app(settings), root_path="/clv") as client:
        page = client.get("/docs").text

    assert "url: '/clv/openapi.json'" in page
    assert 'src="/clv/docs/assets/swagger-ui-bundle.js"' in page
    assert 'href="/clv/docs/assets/swagger-ui.css"' in page
