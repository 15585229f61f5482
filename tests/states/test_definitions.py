"""Procedure definitions: the built-ins load; broken ones fail with one clear message."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from helpers import builtin_document

from engine.definitions import builtin
from states.machine import compile_procedure
from states.spec import DefinitionError

OBJECTION_V1 = builtin_document("objection", 1)
REPAIR_V1 = builtin_document("repair", 1)
REPAIR_V2 = builtin_document("repair", 2)


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    d = copy.deepcopy(OBJECTION_V1)
    change(d)
    return d


def _trigger(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in d["triggers"] if t["name"] == name)


def _state(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in d["states"] if s["name"] == name)


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "unknown destination",
        lambda d: _trigger(d, "accept").update(dest="acepted"),
        "triggers[0].dest: unknown state 'acepted'",
    ),
    (
        "unknown source",
        lambda d: _trigger(d, "accept").update(sources=["submited"]),
        "triggers[0].sources[0]: unknown state 'submited'",
    ),
    (
        "unknown role",
        lambda d: _trigger(d, "accept").update(roles=["janitor"]),
        "triggers[0].roles[0]: unknown role 'janitor'",
    ),
    (
        "unreachable",
        lambda d: d["states"].append(
            {
                "name": "limbo",
                "label": {"zh": "悬", "en": "limbo"},
                "summary": {"zh": "悬", "en": "limbo"},
                "terminal": True,
            }
        ),
        "state 'limbo' is unreachable from 'submitted'",
    ),
    (
        "dead end",
        lambda d: _state(d, "closed").update(terminal=False),
        "state 'closed' is not terminal but has no exit",
    ),
    (
        "terminal with exits",
        lambda d: _state(d, "verifying").update(terminal=True),
        "terminal state 'verifying' has exits",
    ),
    (
        "unknown timer",
        lambda d: _state(d, "verifying").update(starts=["verfy"]),
        ".starts[0]: unknown timer 'verfy'",
    ),
    (
        "unknown notice",
        lambda d: _trigger(d, "accept").update(notices=["acceptence"]),
        "triggers[0].notices[0]: unknown notice 'acceptence'",
    ),
    (
        "unknown guard",
        lambda d: _trigger(d, "accept").update(guards=["is_sunny"]),
        "triggers[0].guards[0]: unknown guard 'is_sunny'",
    ),
    (
        "unknown effect",
        lambda d: _trigger(d, "approve_decision").update(effect="erase"),
        ".effect: unknown effect 'erase'",
    ),
    (
        "bad period",
        lambda d: d["timers"][0].update(period="soon"),
        "timers[0].period: period 'soon' does not parse",
    ),
    (
        "expiry trigger not for the clock",
        lambda d: next(t for t in d["timers"] if t["name"] == "review_window").update(
            expiry_trigger="notify"
        ),
        "trigger 'notify' lacks role 'system'",
    ),
    (
        "unknown field",
        lambda d: _trigger(d, "reject").update(required=["reasonz"]),
        ".required[0]: field 'reasonz' has no definition",
    ),
    (
        "two initial states",
        lambda d: _state(d, "accepted").update(initial=True),
        "exactly one initial state",
    ),
    ("shape", lambda d: d.update(version="two"), "version"),
]


@pytest.mark.parametrize(("what", "change", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_definition_fails_with_clear_message(
    what: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    with pytest.raises(DefinitionError) as err:
        compile_procedure(_broken(change))
    message = str(err.value)
    assert message.startswith("procedure 'objection' version ")
    assert expected in message, message


def test_every_problem_is_listed_at_once() -> None:
    def two(d: dict[str, Any]) -> None:
        _trigger(d, "accept").update(dest="nowhere")
        _trigger(d, "reject").update(roles=["janitor"])

    with pytest.raises(DefinitionError) as err:
        compile_procedure(_broken(two))
    assert len(err.value.problems) >= 2


@pytest.mark.parametrize("definition", [OBJECTION_V1, REPAIR_V1, REPAIR_V2])
def test_builtin_definitions_load_and_export_mermaid(definition: dict[str, Any]) -> None:
    proc = compile_procedure(definition)
    text = proc.mermaid()
    assert text.startswith("stateDiagram-v2")
    for state in proc.states:
        assert f" as {state}" in text
    edges = [line for line in text.splitlines() if " --> " in line]
    for t in definition["triggers"]:  # several triggers between two states share an edge
        assert any(t["name"] in line.split(": ", 1)[1].split(" | ") for line in edges[:-1])
    marked = compile_procedure(REPAIR_V2).mermaid(highlight="reviewing")
    assert "Class reviewing s_active" in marked and "s_active" not in text.split("classDef")[-1]


def test_one_shared_machine_per_version() -> None:
    reg = builtin()
    proc = reg.get("objection", 1)
    assert proc.machine.models == []  # nothing is ever added to the shared machine
    assert reg.get("objection", 1) is proc
