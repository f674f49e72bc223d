"""The committed OpenAPI document is the app's, and it documents every public field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.cli import openapi_document

COMMITTED = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text() == openapi_document(), (
        "openapi/openapi.json is stale: run `clv openapi` and commit the result"
    )


def test_every_schema_field_and_operation_is_documented() -> None:
    document: dict[str, Any] = json.loads(openapi_document())
    undocumented = [
        f"{name}.{field}"
        for name, schema in document["components"]["schemas"].items()
        for field, spec in schema.get("properties", {}).items()
        if not spec.get("description")
    ]
    operations = [operation for item in document["paths"].values() for operation in item.values()]
    assert undocumented == []
    assert all(op.get("operationId") and op.get("summary") for op in operations)
    assert len({op["operationId"] for op in operations}) == len(operations)
