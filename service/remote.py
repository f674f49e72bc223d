"""A small client of a running clv-service, for sending files to it (``clv import-events --url``).

Standard library only (urllib), so the command needs no HTTP dependency. Retries on 503 and 429,
waiting as ``Retry-After`` says, a few times; other errors stop the import with their message.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from service.errors import ServiceError

RETRIES = 5


class RemoteService:
    def __init__(self, base_url: str, api_key: str, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.timeout = timeout

    def _send(self, method: str, path: str, body: Any) -> Any:
        data = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(
                self.base_url + path, data=data, headers=self.headers, method=method
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read() or b"null")
            except urllib.error.HTTPError as error:
                text = error.read().decode(errors="replace")
                if error.code in (429, 503) and attempt < RETRIES:
                    time.sleep(float(error.headers.get("Retry-After", "1")))
                    continue
                raise ServiceError(f"{method} {path}: HTTP {error.code}: {text}") from None
            except urllib.error.URLError as error:
                raise ServiceError(f"cannot reach {self.base_url}: {error.reason}") from None
        raise AssertionError("unreachable")

    def post_events(self, events: list[Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._send("POST", "/v1/events", {"events": events})
        return result

    def put_attributes(self, customer_id: str, source: str, attributes: dict[str, Any]) -> None:
        path = "/v1/customers/" + urllib.parse.quote(customer_id, safe="")
        self._send("PUT", path, {"source": source, "attributes": attributes})
