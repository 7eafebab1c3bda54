"""Request body limits, applied before routing, authentication or any parser sees the body.

A body larger than its limit is answered 413 ``request.too_large`` (from ``Content-Length`` without
reading, or as soon as the bytes read pass the limit); a body that is not a form and nests deeper or holds
more values than ``JsonLimits`` allows is answered 422 ``request.too_deep`` / ``request.too_many_values``.
Routes that take whole library documents (``DOCUMENT_ROUTES``) get their own, larger size limit.
"""

from __future__ import annotations

from typing import Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartpump.json_bounds import JsonLimits
from smartpump.server.api.errors import error_body
from smartpump.server.errors import InvalidInputError
from smartpump.server.settings import Settings

DOCUMENT_ROUTES: Final = frozenset(
    {("POST", "/api/v1/libraries"), ("POST", "/ui/libraries/import"), ("POST", "/api/v1/software-packages")}
)
"""Where a whole drug library (as JSON, or as an uploaded export) or a software artefact arrives:
``max_document_bytes``."""
_BODYLESS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_FORMS: Final = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_CODES: Final = {"depth": "request.too_deep", "values": "request.too_many_values"}


class BodyLimits:
    """ASGI middleware: size limit on every body, shape limits on every body that is not a form."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_document_bytes: int, json_limits: JsonLimits
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_document_bytes = max_document_bytes
        self.json_limits = json_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse an oversize or overdeep body; otherwise pass the request on with its body replayed."""
        if scope["type"] != "http" or scope["method"] in _BODYLESS:
            await self.app(scope, receive, send)
            return
        routed = (scope["method"], scope["path"])
        limit = self.max_document_bytes if routed in DOCUMENT_ROUTES else self.max_bytes
        headers = {key.lower(): value for key, value in scope["headers"]}
        declared = headers.get(b"content-length", b"").strip()
        if (declared.isascii() and declared.isdigit()) and int(declared) > limit:
            await _refuse(scope, receive, send, 413, "request.too_large", _too_large(int(declared), limit))
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await _refuse(scope, receive, send, 413, "request.too_large", _too_large(len(body), limit))
                return
        media_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower().decode("latin-1")
        if media_type not in _FORMS:
            excess = self.json_limits.first_excess(bytes(body))
            if excess is not None:
                what, message_text = excess
                await _refuse(scope, receive, send, 422, _CODES[what], f"the request body {message_text}")
                return
        await self.app(scope, _replay(bytes(body), receive), send)


def json_limits(settings: Settings) -> JsonLimits:
    """The JSON shape limits of the settings (``SMARTPUMP_MAX_JSON_DEPTH``, ``SMARTPUMP_MAX_JSON_VALUES``)."""
    return JsonLimits(max_depth=settings.max_json_depth, max_values=settings.max_json_values)


def check_json_shape(limits: JsonLimits, raw: bytes, what: str) -> None:
    """Refuse JSON text (an uploaded file) beyond the limits, with the codes the middleware answers."""
    excess = limits.first_excess(raw)
    if excess is not None:
        raise InvalidInputError(f"{what} {excess[1]}", code=_CODES[excess[0]])


def _too_large(size: int, limit: int) -> str:
    return f"the request body is {size} bytes or more, limit {limit}"


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then whatever the client sends (a disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, code: str, message: str) -> None:
    response = JSONResponse(error_body(code, message), status_code=status, headers={"Connection": "close"})
    await response(scope, receive, send)
