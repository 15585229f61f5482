"""Typed dependencies: the engine, who is calling, the language, the applicant's access."""

from __future__ import annotations

import asyncio
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends, Header, Query, Request

from api.problems import Unauthenticated
from engine.applicants import AccessGuard, authenticate
from engine.service import Actor, Engine
from states.errors import Forbidden, NotFound


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]

# Token → actor for a short while: every request would otherwise cost a user lookup.
_actors: TTLCache[str, Actor] = TTLCache(maxsize=4096, ttl=30)


async def current_actor(
    engine: EngineDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>` from `redress user add`")
    ] = None,
) -> Actor:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise Unauthenticated("a bearer token is required", "需要提供令牌（Bearer）")
    token = authorization[7:].strip()
    actor = _actors.get(token)
    if actor is None:
        try:
            # A cache miss reads the users table: off the event loop.
            actor = await asyncio.to_thread(engine.authenticate, token)
        except Forbidden:
            raise Unauthenticated("unknown or inactive token", "令牌无效或已停用") from None
        _actors[token] = actor
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]


async def language(
    lang: Annotated[
        str | None, Query(pattern="^(zh|en)$", description="zh (default) or en")
    ] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> str:
    if lang:
        return lang
    if accept_language and accept_language.lower().startswith("en"):
        return "en"
    return "zh"


LangDep = Annotated[str, Depends(language)]


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def applicant_actor(
    request: Request,
    case_no: str,
    engine: EngineDep,
    x_access_code: Annotated[
        str | None, Header(description="The access code given when the case was filed")
    ] = None,
) -> Actor:
    guard: AccessGuard = request.app.state.access_guard
    client = client_key(request)
    delay = guard.delay_for(client)  # raises TooManyAttempts when locked out
    if delay:
        await asyncio.sleep(delay)
    try:
        actor = await asyncio.to_thread(authenticate, engine, case_no, x_access_code or "")
    except NotFound:
        guard.failed(client)
        raise
    return actor


ApplicantDep = Annotated[Actor, Depends(applicant_actor)]
