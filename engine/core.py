"""What every part of the engine shares: the caller (`Actor`), a case as a command reads it
(`_Case`), command results, canonical JSON and the event hash chain."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

import orjson

from engine import schema as t
from engine import sql
from states.errors import (
    FieldError,
    InvalidPayload,
)
from states.records import (
    RecordState,
)

GENESIS = "0" * 64
PUBLICITY_TIMER = "publicity_max"
STAFF_ROLES = ("handler", "reviewer", "head", "credit_office", "admin")
# Case numbers and access codes avoid characters that are easy to misread on a phone.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def _random_code(length: int) -> str:
    """`length` characters of _CODE_ALPHABET, uniformly at random from one draw of the OS's
    random source (a draw per character was one system call each)."""
    n = secrets.randbelow(len(_CODE_ALPHABET) ** length)
    out = []
    for _ in range(length):
        n, i = divmod(n, len(_CODE_ALPHABET))
        out.append(_CODE_ALPHABET[i])
    return "".join(out)


# Reminders go out at 09:00 local on the reminder day: the start of an office's working day.
REMINDER_TIME = time(9, 0)


@dataclass(frozen=True)
class Actor:
    """Who issues a command. Applicants are bound to one case; the clock is `system`."""

    name: str
    role: str
    department_id: str | None = None
    user_id: int | None = None
    case_id: int | None = None
    # The kind of the user's department: "credit_office" for the office that runs the
    # platform, "unit" for a determining unit.
    department_kind: str | None = None

    @property
    def is_staff(self) -> bool:
        # Every role but the applicant's and the clock's is staff, those the installation
        # declares for its procedures (REDRESS_EXTRA_ROLES) included.
        return bool(self.role) and self.role not in ("applicant", "system")

    @property
    def is_office(self) -> bool:
        """Credit-office staff of the credit office itself: they publish and route records.
        The role alone is not enough; in a unit's department it gives nothing more."""
        return self.role == "credit_office" and self.department_kind == "credit_office"

    @property
    def is_global(self) -> bool:
        """Sees and may do everything: an administrator, or the clock."""
        return self.role in ("admin", "system")


SYSTEM = Actor(name="clock", role="system")


@dataclass(frozen=True)
class Opened:
    case_id: int
    case_no: str
    state: str
    version: int
    procedure: str
    definition_version: int
    access_code: str | None
    replayed: bool = False
    definition_id: int = 0


@dataclass(frozen=True)
class Advanced:
    case_id: int
    state: str
    version: int
    seq: int
    replayed: bool = False
    notices: tuple[str, ...] = ()
    record_version: int | None = None


@dataclass(frozen=True)
class AuditProblem:
    case_id: int
    case_no: str
    seq: int
    problem: str


@dataclass
class _Case:
    id: int
    procedure: str
    definition_version: int
    state: str
    version: int
    record_id: int | None
    department_id: str
    assignee_id: int | None
    data: dict[str, Any]
    event_seq: int
    last_hash: str
    case_no: str
    determining_unit: str | None
    applicant_json: str = "{}"
    subject_name: str = ""
    definition_id: int = 0  # the stored definition (procedure_versions.id) it runs under
    jurisdiction: str = "default"  # whose calendar its deadlines count on, for life
    detail: dict[str, Any] = field(default_factory=dict)
    row: tuple[Any, ...] = ()  # as read by CASE_FOR_COMMAND

    def record(self) -> RecordState | None:
        """The case's record as read (and, on PostgreSQL, locked) with the case; None for a
        case about a subject without a published record."""
        if not self.row or self.row[5] is None:
            return None  # (a case opened in this transaction has no row read yet)
        return _record_state(self.row[5], self.row[sql.CASE_RECORD])


_ORJSON_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
_ORJSON_CANONICAL |= orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_SUBCLASS


def canonical(obj: Any) -> str:
    """The one text form of a JSON value that hashes and idempotency compare: keys sorted, no
    spaces, non-ASCII kept. orjson writes it (several times faster; an `advance` makes about
    five). It is the standard library's form (tests/engine/test_canonical.py) except for how a
    float is spelled (1e-7, not 1e-07) and NaN, which redress refuses before it gets here;
    what orjson cannot write (integers beyond 64 bits, lone surrogates) goes to the standard
    library."""
    try:
        return orjson.dumps(obj, default=str, option=_ORJSON_CANONICAL).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return _canonical_stdlib(obj)


def loads(text: str) -> Any:
    """Parse JSON the engine stored (orjson; the standard library for what it cannot read,
    integers beyond 64 bits)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _canonical_stdlib(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def event_hash(prev_hash: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(body)).encode()).hexdigest()


def _event_body(
    case_id: int,
    seq: int,
    trigger: str,
    src: str | None,
    dest: str,
    version: int,
    actor: str,
    role: str,
    at: str,
    payload: str,
    detail: str,
) -> dict[str, Any]:
    # Everything that makes the event what it is, so altering any column breaks the chain.
    return {
        "case_id": case_id,
        "seq": seq,
        "trigger": trigger,
        "from": src,
        "to": dest,
        "version": version,
        "actor": actor,
        "role": role,
        "at": at,
        "payload": payload,
        "detail": detail,
    }


def _record_state(record_id: int, r: Sequence[Any]) -> RecordState:
    """A record from RECORD_FOR_UPDATE's columns after the id (CASE_FOR_COMMAND's CASE_RECORD)."""
    return RecordState(
        id=record_id,
        version=r[0],
        status=r[1],
        disputed=bool(r[2]),
        severity=r[3],
        published_from=t.to_date(r[4]) or date.min,
        content=loads(r[5]),
        repair_barred_until=t.to_date(r[6]),
        source_category=r[7],
        decision_date=t.to_date(r[8]),
    )


JURISDICTION_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def _check_jurisdiction(name: str) -> None:
    if not JURISDICTION_NAME.fullmatch(name):
        raise InvalidPayload(
            [
                FieldError(
                    "jurisdiction",
                    "invalid",
                    f"{name!r} is not a jurisdiction name (lower-case letters, digits, - and _)",
                    f"“{name}”不是有效的辖区名称（小写字母、数字、-、_）",
                )
            ]
        )
