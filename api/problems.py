"""Errors as problem+json (RFC 9457), mapped from the engine's typed errors in one place."""

from __future__ import annotations

import logging
import sqlite3
from datetime import date
from typing import Any

import psycopg
import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.applicants import TooManyAttempts
from engine.attachments import TooLarge
from states.errors import (
    Conflict,
    Forbidden,
    IdempotencyConflict,
    Ineligible,
    InvalidDefinition,
    InvalidPayload,
    NotFound,
    RedressError,
    StaleVersion,
    TransitionNotAllowed,
)

PROBLEM = "application/problem+json"


class FieldProblem(BaseModel):
    field: str
    code: str
    message: str
    message_zh: str


class DefinitionProblem(BaseModel):
    """One problem of a procedure document: where it is and what is wrong."""

    path: str
    line: int | None = None
    column: int | None = None
    message: str
    message_zh: str


class Problem(BaseModel):
    """An error. `detail` in English, `detail_zh` in Chinese; extra members by kind."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    detail_zh: str | None = None
    code: str | None = None
    errors: list[FieldProblem] | None = None
    allowed: list[str] | None = None
    current_version: int | None = None
    earliest: date | None = None
    retry_after: int | None = None
    problems: list[DefinitionProblem] | None = None

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "type": "about:blank",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "trigger 'approve_decision' is not allowed in state 'submitted'; "
                    "allowed now: accept, reject, request_supplement, withdraw",
                    "detail_zh": "当前状态“submitted”下不能执行“approve_decision”",
                    "code": "transition_not_allowed",
                    "allowed": ["accept", "reject", "request_supplement", "withdraw"],
                }
            ]
        }
    }


class Unauthenticated(RedressError):
    code = "unauthenticated"


class PreconditionRequired(RedressError):
    code = "precondition_required"


TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    428: "Precondition Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}

# Errors raised by routing and parsing rather than by redress.
HTTP_CODES = {
    400: ("bad_request", "请求无法解析"),
    404: ("not_found", "没有这个地址"),
    405: ("method_not_allowed", "该地址不支持此方法"),
    413: ("too_large", "请求内容过大"),
    415: ("unsupported_media_type", "不支持的内容类型"),
}

STATUS: list[tuple[type[RedressError], int]] = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (TransitionNotAllowed, 409),
    (Conflict, 409),
    (StaleVersion, 412),
    (PreconditionRequired, 428),
    (TooLarge, 413),
    (InvalidPayload, 422),
    (InvalidDefinition, 422),
    (Ineligible, 422),
    (IdempotencyConflict, 422),
    (TooManyAttempts, 429),
]


def problem(
    status: int,
    detail: str,
    detail_zh: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = Problem(
        title=TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        detail_zh=detail_zh,
        code=code,
        **extra,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def from_error(exc: RedressError) -> JSONResponse:
    status = next((s for kind, s in STATUS if isinstance(exc, kind)), 400)
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, InvalidPayload):
        extra["errors"] = [
            FieldProblem(field=e.field, code=e.code, message=e.message, message_zh=e.message_zh)
            for e in exc.errors
        ]
    if isinstance(exc, InvalidDefinition):
        extra["problems"] = [
            DefinitionProblem(
                path=p.where, line=p.line, column=p.column, message=p.en, message_zh=p.zh
            )
            for p in exc.problems
        ]
    if isinstance(exc, TransitionNotAllowed):
        extra["allowed"] = exc.allowed
    if isinstance(exc, StaleVersion):
        extra["current_version"] = exc.current
        headers["ETag"] = f'"{exc.current}"'
    if isinstance(exc, Ineligible) and exc.earliest:
        extra["earliest"] = exc.earliest
    if isinstance(exc, TooManyAttempts):
        extra["retry_after"] = exc.retry_after
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return problem(status, exc.message, exc.message_zh, exc.code, headers or None, **extra)


def install(app: FastAPI) -> None:
    @app.exception_handler(RedressError)
    async def _redress(_: Request, exc: RedressError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = [
                str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")
            ]
            errors.append(
                FieldProblem(
                    field=".".join(loc) or "request",
                    code=err["type"],
                    message=err["msg"],
                    message_zh=err["msg"],
                )
            )
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
        return problem(422, detail, "请求内容有误：" + detail, "invalid_request", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, zh = HTTP_CODES.get(exc.status_code, ("http_error", "请求错误"))
        return problem(
            exc.status_code, str(exc.detail), zh, code, dict(exc.headers) if exc.headers else None
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        return unexpected(exc)


# Seconds a client is asked to wait when the database cannot be reached.
DB_RETRY_AFTER = 5


def database_unavailable(exc: BaseException) -> bool:
    """The database is down, restarting, unreachable or out of connections: not a bug, and
    nothing was done (the command's one transaction was not committed)."""
    if isinstance(exc, sa.exc.TimeoutError):  # the pool: no connection came free in time
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    # The engine's own transactions use the driver's connections: its errors come unwrapped.
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc) or "busy" in str(exc)
    return isinstance(exc, ConnectionError)


def unexpected(exc: Exception) -> JSONResponse:
    """A bug, not bad input: logged with its traceback by the server; no details leak. The
    database being unavailable is a 503 with Retry-After instead: the client tries again."""
    if database_unavailable(exc):
        logging.getLogger("redress.api").warning("database unavailable: %s", exc)
        return problem(
            503,
            "the database is unavailable; nothing was done, try again shortly",
            "数据库暂不可用，本次请求未执行，请稍后重试",
            "database_unavailable",
            {"Retry-After": str(DB_RETRY_AFTER)},
            retry_after=DB_RETRY_AFTER,
        )
    logging.getLogger("redress.api").exception("unhandled error", exc_info=exc)
    return problem(500, "internal error; it has been logged", "服务器内部错误，已记录", "internal")


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses an operation can answer (400, a request that
    cannot be parsed at all, and 503, the database unavailable, are possible everywhere)."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {
            "model": Problem,
            "description": TITLES.get(code, "Error"),
            "content": {PROBLEM: {"schema": ref}},
        }
        for code in sorted({400, 503, *codes})
    }
