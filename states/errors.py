"""Typed errors a caller can act on. Every one is a value with the facts needed to answer it.

The API maps each to one HTTP status in one place; the CLI prints its message. A command that
raises any of these has written nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any


class RedressError(Exception):
    """Base of every expected, user-facing error."""

    code = "error"

    def __init__(self, message: str, message_zh: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.message_zh = message_zh or message


class TransitionNotAllowed(RedressError):
    code = "transition_not_allowed"

    def __init__(
        self,
        trigger: str,
        state: str,
        allowed: list[str],
        reason: str | None = None,
        reason_zh: str | None = None,
    ) -> None:
        self.trigger = trigger
        self.state = state
        self.allowed = allowed
        self.reason = reason
        self.reason_zh = reason_zh
        msg = reason or f"trigger {trigger!r} is not allowed in state {state!r}"
        zh = reason_zh or f"当前状态“{state}”下不能执行“{trigger}”"
        super().__init__(
            f"{msg}; allowed now: {', '.join(allowed) or 'none'}",
            f"{zh}；当前可执行：{'、'.join(allowed) or '无'}",
        )


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str
    message_zh: str


class InvalidPayload(RedressError):
    code = "invalid_payload"

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__(
            "; ".join(f"{e.field}: {e.message}" for e in errors),
            "；".join(f"{e.field}：{e.message_zh}" for e in errors),
        )


class Ineligible(RedressError):
    """An application the procedure refuses at intake (e.g. repair before the minimum period)."""

    code = "ineligible"

    def __init__(self, message: str, message_zh: str, earliest: date | None = None) -> None:
        self.earliest = earliest
        super().__init__(message, message_zh)


class StaleVersion(RedressError):
    code = "stale_version"

    def __init__(self, case_id: int, expected: int, current: int) -> None:
        self.case_id = case_id
        self.expected = expected
        self.current = current
        super().__init__(
            f"case {case_id} is at version {current}, not {expected}: reload and try again",
            f"案件已更新至第{current}版（您提交的是第{expected}版），请刷新后重试",
        )


class Forbidden(RedressError):
    code = "forbidden"


class NotFound(RedressError):
    code = "not_found"


class IdempotencyConflict(RedressError):
    """The same idempotency key was used before with a different request."""

    code = "idempotency_conflict"


class Conflict(RedressError):
    """A uniqueness rule would be broken (a name already taken, ...)."""

    code = "conflict"


class InvalidDefinition(RedressError):
    """A procedure document that does not validate: every problem, located (states/spec.py's
    Problem: path, line, column, and the message in both languages)."""

    code = "invalid_definition"

    def __init__(self, source: str, problems: Sequence[Any]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(
            f"{source}: {len(self.problems)} problem(s) in the procedure definition",
            f"{source}：程序定义有{len(self.problems)}处问题",
        )
