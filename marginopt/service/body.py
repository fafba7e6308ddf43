"""Request bodies read as JSON by one parser, strictly: what is not JSON is 400, before any validation.

FastAPI parses a JSON body with ``json.loads`` on the raw bytes, which guesses UTF-16 and
UTF-32 as well as UTF-8, answers invalid UTF-8 and nesting past Python's recursion limit
with an undocumented ``400 There was an error parsing the body``, and a syntax error with
422. Here every body FastAPI would parse as JSON goes through ``parse_json`` instead
(``JSONRoute`` swaps in a request whose ``json()`` is it), so the line is one rule:

- 400: the body is not JSON at all: not UTF-8 (RFC 8259 section 8.1; a leading byte order
  mark is ignored, as that section allows), a syntax error, or nested deeper than
  ``MAX_JSON_DEPTH`` objects and lists;
- 422 (elsewhere): JSON, but not what the endpoint takes.

Depth is capped at a fixed number rather than left to the recursion limit: the C parser
stops at about 1,000 levels after a fraction of a millisecond whatever the body's size, but
where it stops depends on the stack in use, and whatever comes through goes on to code
(validation, error messages) that may recurse too. A case needs about 10 levels.
``NaN`` and ``Infinity``, which Python's parser takes, stay numbers here: the request models
and the case reader refuse them naming the field (422), which says more than a syntax error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

MAX_JSON_DEPTH = 64
_BOM = b"\xef\xbb\xbf"


class BodyNotJSON(HTTPException):
    """The body is not JSON (answered 400). An ``HTTPException`` so that FastAPI passes it on
    from its body parsing unchanged; the service's handler writes it in the service's error shape."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(status_code=400, detail=message)
        self.message = message
        self.kind = kind


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body``; ``BodyNotJSON`` saying where it is not JSON."""
    if body.startswith(_BOM):
        body = body[len(_BOM):]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyNotJSON(f"the body is not UTF-8 text (JSON is UTF-8): byte 0x{body[exc.start]:02x} at byte offset "
                          f"{exc.start} ({exc.reason})", "not_utf8") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodyNotJSON(f"invalid JSON at line {exc.lineno}, column {exc.colno} (character {exc.pos}): {exc.msg}",
                          "json_invalid") from None
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # an integer of more digits than Python converts (4,300): no JSONDecodeError, no position
        raise BodyNotJSON(f"a number JSON cannot carry here: {exc}", "json_invalid") from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value


def _too_deep() -> BodyNotJSON:
    return BodyNotJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels of objects and lists (a case needs about 10)",
                       "json_too_deep")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` holds objects and lists more than ``limit`` levels deep; no recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


class JSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JSONRoute(APIRoute):
    """A route whose request body, where FastAPI reads it as JSON, is read by ``parse_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json(request: Request) -> Response:
            return await handler(JSONRequest(request.scope, request.receive))

        return strict_json
