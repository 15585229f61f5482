"""Test helpers: open cases and drive them along the demo's paths with natural actors."""

from __future__ import annotations

from datetime import date
from typing import Any

from conftest import APPLICANT, World

from engine.demo import (
    OBJECTION_INTAKE,
    OBJECTION_PATHS,
    PAYLOADS,
    REPAIR_INTAKE,
    REPAIR_PATHS,
    actor_key,
)
from engine.demo import drive as demo_drive
from engine.service import SYSTEM, Actor, Opened

__all__ = ["OBJECTION_INTAKE", "OBJECTION_PATHS", "PAYLOADS", "REPAIR_INTAKE", "REPAIR_PATHS"]


def open_objection(w: World, record_id: int | None = None, **kw: Any) -> Opened:
    return w.engine.open_case(
        procedure="objection",
        record_id=record_id or w.record(),
        applicant=APPLICANT,
        actor=w.actor("office_handler"),
        payload=OBJECTION_INTAKE,
        **kw,
    )


def open_repair(
    w: World, record_id: int | None = None, filed_on: date | None = None, **kw: Any
) -> Opened:
    return w.engine.open_case(
        procedure="repair",
        record_id=record_id or w.record(),
        applicant=APPLICANT,
        actor=w.actor("office_handler"),
        payload=REPAIR_INTAKE,
        filed_on=filed_on,
        **kw,
    )


def actor_for(w: World, procedure: str, trigger: str) -> Actor:
    return (
        SYSTEM
        if trigger in ("deem_withdrawn", "evidence_lapsed", "finalize")
        else w.actor(actor_key(procedure, trigger))
    )


def drive(
    w: World,
    case_id: int,
    procedure: str,
    steps: list[str],
    payloads: dict[str, dict[str, Any]] | None = None,
) -> None:
    demo_drive(w.engine, w.staff, case_id, procedure, steps, payloads)


def builtin_document(name: str, version: int, jurisdiction: str = "default") -> dict[str, Any]:
    """A built-in procedure file's data, for tests that change a copy of it."""
    import yaml

    from engine.definitions import BUILTIN_DIR

    path = BUILTIN_DIR / name / f"{jurisdiction}-v{version}.yaml"
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data
