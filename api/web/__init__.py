"""Server-rendered pages: the applicants' portal (/) and the handlers' console (/console).

Pages are Jinja2 templates (templates/pages) over the same engine the JSON API uses; forms post
back to the page, which re-renders with the errors beside their fields. zh-CN by default, English
through the switch in the header (a cookie). Sessions are signed cookies holding ids only; every
form carries a CSRF token bound to the session.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.service import Engine

STATIC = Path(__file__).resolve().parent / "static"


class PagesOnly:
    """Sessions for the pages only: the JSON API (/api/...) authenticates every request by
    token or access code and never reads a cookie, so it skips the session layer entirely
    (no cookie parsing or signing on the hot path, and no ambient authority for CSRF)."""

    def __init__(self, app: ASGIApp, secret_key: str, max_age: int, https_only: bool) -> None:
        self.app = app
        self.pages = SessionMiddleware(
            app,
            secret_key=secret_key,
            session_cookie="redress_session",
            same_site="lax",
            https_only=https_only,  # Secure: the cookie never goes out over plain HTTP
            max_age=max_age,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            await self.app(scope, receive, send)
        else:
            await self.pages(scope, receive, send)


def install(app: FastAPI, engine: Engine) -> None:
    from api.web import console, office_pages, portal

    app.add_middleware(
        PagesOnly,
        secret_key=engine.settings.secret_key,
        max_age=8 * 3600,
        https_only=engine.settings.behind_https,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(portal.router)
    app.include_router(office_pages.router, prefix="/console")
    app.include_router(console.router, prefix="/console")
