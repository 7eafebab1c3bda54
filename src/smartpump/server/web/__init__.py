"""The browser UI, served by the server itself: pages, static assets, browser sessions and the live stream."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from smartpump.server.web import (
    bench_pages,
    configuration_pages,
    insight_pages,
    library_pages,
    pages,
    panel,
    password_pages,
    quarantine_pages,
)
from smartpump.server.web.render import render
from smartpump.server.web.session import CookieAuthMiddleware, install_html_errors

__all__ = ["mount_web"]


def _error_page(request: Request, status: int, code: str, message: str) -> Response:
    return render(
        request, "error.html", principal=None, status_code=status, status=status, code=code, message=message
    )


def mount_web(app: FastAPI) -> None:
    """Add the UI's routes under /ui, the session-cookie middleware and HTML error pages to the app."""
    for module in (
        pages,
        library_pages,
        configuration_pages,
        panel,
        insight_pages,
        password_pages,
        quarantine_pages,
    ):
        app.include_router(module.router)
    app.include_router(bench_pages.router)
    app.add_middleware(CookieAuthMiddleware)
    install_html_errors(app, _error_page)
