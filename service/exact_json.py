"""JSON parsing that keeps numbers exact and refuses what JSON itself refuses.

Python's ``json`` turns ``19.99`` into a float and a 17-digit amount into a rounded one; parsing
floats as ``Decimal`` keeps every amount as sent. It also accepts ``NaN`` and ``Infinity``, which
are not JSON. Invalid UTF-8 and absurd nesting surface here as ``JSONDecodeError`` too, so every
caller reports them as bad input rather than crashing.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_exact(text: bytes | str) -> Any:
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError:
        raise
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise json.JSONDecodeError(str(error) or "invalid JSON", "", 0) from None
