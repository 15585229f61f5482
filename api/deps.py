"""Typed dependencies: the engine, who is calling, the language, the applicant's access."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from functools import partial
from typing import Annotated, Any, TypeVar

from anyio import to_thread
from fastapi import Depends, Header, Query, Request, Response
from pydantic import BaseModel

from api.problems import Unauthenticated
from engine.applicants import AccessGuard, authenticate
from engine.service import Actor, Engine
from states.errors import Forbidden, NotFound

T = TypeVar("T")


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated[Engine, Depends(get_engine)]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    return authorization[7:].strip()


async def current_actor(
    engine: EngineDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>` from `redress user add`")
    ] = None,
) -> Actor:
    token = bearer_token(authorization)
    if token is None:
        raise Unauthenticated("a bearer token is required", "需要提供令牌（Bearer）")
    try:
        # Read on every request, never cached: a disabled user's token is refused at once,
        # in every process. One indexed read (run_read: on the loop for SQLite).
        return await run_read(engine, partial(engine.authenticate, token[:500]))
    except Forbidden:
        raise Unauthenticated(
            "unknown, expired or revoked token", "令牌无效、已过期或已停用"
        ) from None


ActorDep = Annotated[Actor, Depends(current_actor)]


async def language(
    lang: Annotated[
        str | None, Query(pattern="^(zh|en)$", description="zh (default) or en")
    ] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> str:
    return pick_language(lang, accept_language)


def pick_language(lang: str | None, accept_language: str | None) -> str:
    if lang:
        return lang
    if accept_language and accept_language.lower().startswith("en"):
        return "en"
    return "zh"


LangDep = Annotated[str, Depends(language)]


def client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ClientDep = Annotated[str, Depends(client_key)]


def scope_client(client: tuple[str, int] | None) -> str:
    """`client_key` from an ASGI scope's client (api/hot.py)."""
    return client[0] if client else "unknown"


async def run_read(engine: Engine, lookup: Callable[[], T]) -> T:
    """A short, indexed read. On SQLite it runs right here: the database is in this process,
    a read never waits for a writer (WAL), and the thread hop would cost more than the read
    (0.15 ms against 0.1 ms for the whole status view). Elsewhere it goes to a worker thread,
    because a network round trip must not hold up the event loop."""
    if engine.db.strategy.local_reads:
        return lookup()
    return await to_thread.run_sync(lookup)


async def guarded(
    request: Request,
    case_no: str,
    lookup: Callable[[AccessGuard, str], T],
) -> T:
    """An applicant's look-up by case number and access code (`run_read`), under the
    wrong-code guard: slowed after a few misses on the case, refused (429) after more."""
    state = request.app.state
    return await guarded_for(state.access_guard, state.engine, client_key(request), case_no, lookup)


async def guarded_for(
    guard: AccessGuard,
    engine: Engine,
    client: str,
    case_no: str,
    lookup: Callable[[AccessGuard, str], T],
) -> T:
    """`lookup(guard, client)` checks the code and, for a right one, asks the guard in the
    same read transaction (a right code is refused only on a case attacked from here)."""
    try:
        return await run_read(engine, partial(lookup, guard, client))
    except NotFound:
        # Decided and recorded in one write (a worker thread: it may wait for the lock);
        # raises TooManyAttempts when the case or the client is over its bound.
        delay = await to_thread.run_sync(guard.failed, case_no, client)
        if delay:
            await asyncio.sleep(delay)
        raise


AccessCode = Annotated[
    str | None, Header(description="The access code given when the case was filed")
]


async def applicant_actor(
    request: Request, case_no: str, engine: EngineDep, x_access_code: AccessCode = None
) -> Actor:
    return await guarded(
        request,
        case_no,
        lambda guard, client: authenticate(engine, case_no, x_access_code or "", guard, client),
    )


ApplicantDep = Annotated[Actor, Depends(applicant_actor)]


def model_response(
    model: type[BaseModel], data: Any, headers: Mapping[str, str] | None = None
) -> Response:
    """The hot routes' answer: validated against the declared model and serialised in one
    pass by pydantic, instead of FastAPI's validate-then-encode of the returned value."""
    return Response(
        model.model_validate(data).model_dump_json(),
        media_type="application/json",
        headers=headers,
    )
