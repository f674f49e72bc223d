"""JSON parsing that keeps numbers exact and says what is wrong with a text that is not JSON.

Python's ``json`` turns ``19.99`` into a float and a 17-digit amount into a rounded one; parsing
floats as ``Decimal`` keeps every amount as sent. It also accepts ``NaN`` and ``Infinity``, which
are not JSON, reads UTF-16 and UTF-32 (JSON between systems is UTF-8, RFC 8259 section 8.1), and
nests as deep as Python's recursion limit lets it. Each of those is refused here with a
``JSONDecodeError`` whose ``msg`` says what is wrong and where, in words a client can act on.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

MAX_DEPTH = 32
"""Arrays and objects nested in one another. The deepest body the API takes nests 5 (a batch's
events' items' objects); a fixed limit far below Python's recursion limit is the same on every
call, wherever the parser is called from."""

_GZIP_MAGIC = b"\x1f\x8b"
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(set(range(256)) - set(b'[]{}"'))
_STRING = re.compile(rb'"[^"]*"')


class InvalidJSONError(json.JSONDecodeError):
    """A text that is not JSON, or not JSON this service reads; ``msg`` is the whole story."""

    def __init__(self, msg: str, doc: str = "", pos: int = 0) -> None:
        super().__init__(msg, doc, pos)
        self.args = (msg,)

    def __str__(self) -> str:
        return self.msg


def _refuse_constant(name: str) -> Any:
    raise InvalidJSONError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def _decoded(data: bytes) -> str:
    if data.startswith(_GZIP_MAGIC):
        raise InvalidJSONError(
            "it starts as gzip does (0x1F 0x8B): compressed bodies are not accepted"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidJSONError(
            f"invalid UTF-8 at byte {error.start} (0x{data[error.start]:02X}): "
            "JSON must be encoded as UTF-8"
        ) from None


def nested_deeper_than(data: bytes, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` deep, without parsing: the text is cut
    down to its brackets (strings and escapes removed), then each pass removes the innermost
    pairs. Unbalanced brackets answer False, for the parser to report. Linear passes over C
    string operations: a few milliseconds for a 10 MiB batch."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b"\\" in data:  # escaped backslashes, then escaped quotes, so strings pair up
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Two quotes in a row (an empty string, or the end of one and the start of the next) go
    # first, at C speed: what remains of the strings is those holding brackets.
    quotes_and_brackets = data.translate(_BRACKETS_ONLY, _NOT_STRUCTURE).replace(b'""', b"")
    skeleton = _STRING.sub(b"", quotes_and_brackets)
    if b"[" * (limit + 1) in skeleton:
        return True
    for _ in range(limit):
        inner_removed = skeleton.replace(b"[]", b"")
        if inner_removed == skeleton:
            return False
        skeleton = inner_removed
    return b"[]" in skeleton


def loads_exact(text: bytes | str) -> Any:
    """Parse JSON with exact decimals; ``InvalidJSONError`` (a ``JSONDecodeError``) says why a
    text is refused: invalid UTF-8 (at which byte), gzip, NaN or Infinity, nesting deeper than
    ``MAX_DEPTH``, or a syntax error (at which line and column)."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    decoded = _decoded(data) if isinstance(text, bytes) else text
    if nested_deeper_than(data, MAX_DEPTH):
        raise InvalidJSONError(f"arrays and objects nest deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(decoded, parse_float=Decimal, parse_constant=_refuse_constant)
    except InvalidJSONError:
        raise
    except json.JSONDecodeError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise InvalidJSONError(f"{error.msg} at {where}", error.doc, error.pos) from None
    except RecursionError:  # unreachable below MAX_DEPTH; kept so no text can be a 500
        raise InvalidJSONError("nested too deeply") from None
