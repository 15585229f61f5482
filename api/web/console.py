"""The handlers' console: sign in, the work queue, a case, the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.web.common import render, staff, to_login

router = APIRouter(include_in_schema=False)


@router.get("", response_class=HTMLResponse, response_model=None)
def queue(request: Request) -> HTMLResponse | RedirectResponse:
    actor = staff(request)
    if actor is None:
        return to_login(request)
    return render(request, "console/queue.html", actor=actor)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return render(request, "console/login.html", errors={})
