"""Swagger UI at /docs works in a real browser with no internet: headless Chromium opens it on a
live server, authorizes with an API key, sends an event batch and reads a customer's score, all
by pressing the page's own buttons, as a user following the README would.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make browser`` installs them); skipped
without them. Selenium drives the packaged chromedriver, so it never downloads a driver.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from selenium.common.exceptions import (
    ElementClickInterceptedException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver import Chrome, ChromeOptions
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine

from tests.conftest import KeyFactory, ScoredShop, bearer, serve_app, top_customer

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 30

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian chromium, chromium-driver): "
        "run `make browser`",
    ),
]


@pytest.fixture
def browser() -> Iterator[Chrome]:
    options = ChromeOptions()
    options.binary_location = str(CHROMIUM)
    options.add_argument("--headless=new")
    options.add_argument("--window-size=1400,1000")
    options.add_argument("--disable-dev-shm-usage")  # containers give /dev/shm 64 MiB
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # as root, Chromium will not start without it
    driver = Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class SwaggerPage:
    """The few things a user does on /docs, each waiting for the page to get there."""

    def __init__(self, driver: Chrome) -> None:
        self.driver = driver
        # React re-renders replace elements; a click can land while a dialog still fades.
        self.wait = WebDriverWait(
            driver,
            WAIT_SECONDS,
            ignored_exceptions=(
                NoSuchElementException,
                StaleElementReferenceException,
                ElementClickInterceptedException,
            ),
        )

    def click(self, selector: str, within: WebElement | None = None) -> None:
        """Clicks the first element matching ``selector`` once it is shown and enabled."""
        scope = within or self.driver

        def press(_: WebDriver) -> bool:
            element = scope.find_element(By.CSS_SELECTOR, selector)
            if not (element.is_displayed() and element.is_enabled()):
                return False
            element.click()
            return True

        self.wait.until(press)

    def authorize(self, key: str) -> None:
        self.click("button.authorize")
        field = self.wait.until(
            expected_conditions.visibility_of_element_located((By.ID, "auth-bearer-value"))
        )
        field.send_keys(key)
        self.click(".auth-btn-wrapper button.authorize")
        self.click(".auth-btn-wrapper button.btn-done")
        self.wait.until(
            expected_conditions.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux"))
        )

    def open_operation(self, tag: str, operation_id: str) -> WebElement:
        """Expands the operation and presses Try it out; returns its block."""
        block = self.wait.until(
            expected_conditions.presence_of_element_located(
                (By.ID, f"operations-{tag}-{operation_id}")
            )
        )
        self.click(".opblock-summary-control", block)
        self.click("button.try-out__btn", block)
        return block

    def fill(self, selector: str, text: str, block: WebElement) -> None:
        """Replaces the field's text as a paste would: typing a JSON body key by key takes
        Swagger UI's editor 40 ms a key on two cores (a re-render each)."""
        field = self.wait.until(lambda _: block.find_element(By.CSS_SELECTOR, selector))
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        self.driver.execute_cdp_cmd("Input.insertText", {"text": text})

    def execute(self, block: WebElement) -> tuple[str, Any]:
        """Presses Execute; returns the status and the JSON body the page shows."""
        self.click("button.execute", block)
        response = self.wait.until(
            lambda _: block.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response")
        )
        status = response.find_element(By.CSS_SELECTOR, ".response-col_status")
        body = response.find_element(By.CSS_SELECTOR, ".highlight-code pre")
        return status.text.strip(), json.loads(body.text)


# The browser sees the same HTTP API on either backend (tests/scoring covers both): SQLite only.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_swagger_ui_works_offline_to_send_events_and_read_a_score(
    scored_shop: ScoredShop, db: Engine, make_key: KeyFactory, browser: Chrome
) -> None:
    key = make_key("ingest", "read")
    customer = top_customer(db)
    order = {
        "event_id": "swagger-ui-order-1",
        "customer_id": customer,
        "type": "purchase",
        "occurred_at": datetime.now(UTC).isoformat(),
        "amount": "120.00",
    }
    page = SwaggerPage(browser)
    with serve_app(scored_shop.settings) as url:
        browser.get(f"{url}/docs")
        page.authorize(key)

        events = page.open_operation("events", "ingest_events")
        page.fill("textarea.body-param__text", json.dumps({"events": [order]}), events)
        events_status, ingested = page.execute(events)

        score = page.open_operation("scores", "get_customer_clv")
        page.fill('tr[data-param-name="customer_id"] input', customer, score)
        score_status, shown = page.execute(score)

        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        with httpx2.Client(base_url=url, headers=bearer(key)) as client:
            served = client.get(f"/v1/customers/{customer}/clv").json()

    assert events_status == "200"
    assert ingested["accepted"] == 1
    assert score_status == "200"
    assert shown["customer_id"] == customer
    assert shown["clv"] > 0
    assert shown == served
    # Everything the page loaded (script, styles, favicon, the OpenAPI document, the two API
    # calls) came from the service itself: no CDN, so it works air-gapped.
    assert loaded
    assert all(name.startswith(f"{url}/") for name in loaded), loaded
    assert f"{url}/docs/assets/swagger-ui-bundle.js" in loaded
