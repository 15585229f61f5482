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

from engine.service import Engine

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI, engine: Engine) -> None:
    from api.web import console, portal

    app.add_middleware(
        SessionMiddleware,
        secret_key=engine.settings.secret_key,
        session_cookie="redress_session",
        same_site="lax",
        https_only=False,
        max_age=8 * 3600,
    )
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(portal.router)
    app.include_router(console.router, prefix="/console")
