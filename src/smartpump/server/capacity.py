"""Capacity by design: at most ``max_concurrent_requests`` requests are served at once; one more waits up
to ``queue_wait_s`` for a slot and is then answered 503 ``server.busy`` with ``Retry-After``, never a
500 or a stall. The health check is not counted (it must answer while the server is busy). A live stream
holds a slot only until it starts streaming (its authentication is database work like any request's; an
open stream holds no connection and no slot), so any number of streams opening at once cannot take every
worker thread and database connection, which stalled the whole server at 200 streams.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Final

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smartpump.server.api.errors import error_body

UNCOUNTED_PATHS: Final = frozenset({"/api/v1/health"})
STREAM_PATHS: Final = frozenset({"/ui/stream"})
"""Long-lived responses: their slot is given back when the response starts."""
RETRY_AFTER_S: Final = 1
POLL_S: Final = 0.01


class Capacity:
    """ASGI middleware: a bounded number of requests in flight; the rest are told to come back."""

    def __init__(self, app: ASGIApp, *, max_concurrent_requests: int, queue_wait_s: float) -> None:
        self.app = app
        self.limit = max_concurrent_requests
        self.queue_wait_s = queue_wait_s
        self._lock = threading.Lock()  # not an asyncio primitive: test clients run apps on several loops
        self.in_flight = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request in a slot, or answer 503 when none frees within ``queue_wait_s``."""
        if scope["type"] != "http" or scope["path"] in UNCOUNTED_PATHS:
            await self.app(scope, receive, send)
            return
        deadline = time.monotonic() + self.queue_wait_s
        while not self._take():
            if time.monotonic() >= deadline:
                await self._refuse(scope, receive, send)
                return
            await asyncio.sleep(POLL_S)
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                with self._lock:
                    self.in_flight -= 1

        async def send_then_release(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        streaming = scope["path"] in STREAM_PATHS
        try:
            await self.app(scope, receive, send_then_release if streaming else send)
        finally:
            release()

    def _take(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                return False
            self.in_flight += 1
            return True

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._lock:
            self.refused += 1
        message = f"the server is serving {self.limit} requests; retry in {RETRY_AFTER_S} s"
        response = JSONResponse(
            error_body("server.busy", message), status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )
        await response(scope, receive, send)
