"""The canonical JSON text that event hashes and idempotency keys compare (engine/service.py).

It is written by orjson for speed and must stay the standard library's form for everything an
event hash covers, or the audit chains written before the switch would no longer verify."""

from __future__ import annotations

import json
import math
import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from engine.core import _canonical_stdlib, loads
from engine.service import canonical
from states.machine import json_problem


def _text(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        cp = rng.choice(
            (rng.randrange(0, 0x80), rng.randrange(0x80, 0x3000), rng.randrange(0x3000, 0x110000))
        )
        if 0xD800 <= cp <= 0xDFFF:  # no lone surrogates here; see the fallback test
            cp = 0x4E2D
        out.append(chr(cp))
    return "".join(out)


def test_every_code_point_is_written_as_the_standard_library_writes_it() -> None:
    chars = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert canonical({"s": chars}) == _canonical_stdlib({"s": chars})


def test_event_bodies_and_payloads_match_the_standard_library() -> None:
    rng = random.Random(7)
    for _ in range(500):
        body = {
            _text(rng, 5): _text(rng, 40),
            "case_id": rng.randrange(-(2**63), 2**63),
            "seq": rng.randrange(1000),
            "from": None,
            "ok": rng.random() < 0.5,
            "list": [_text(rng, 3), rng.randrange(10), None, {"z": 1, "a": [True]}],
            "nested": {_text(rng, 2): {_text(rng, 2): _text(rng, 8)}},
        }
        assert canonical(body) == _canonical_stdlib(body)
        assert loads(canonical(body)) == body


def test_dates_and_times_are_written_with_str_as_before() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    value = {"d": date(2026, 4, 7), "t": datetime(2026, 4, 7, 9, 0, tzinfo=tz)}
    assert canonical(value) == _canonical_stdlib(value)
    assert '"2026-04-07 09:00:00+08:00"' in canonical(value)


@pytest.mark.parametrize(
    "value",
    [2**70, {"n": -(2**80)}, "\ud800 lone surrogate", {2: "int keys", 1: "x"}],
    ids=["big int", "big negative", "lone surrogate", "int key"],
)
def test_what_orjson_cannot_write_falls_back_to_the_same_text(value: object) -> None:
    assert canonical(value) == _canonical_stdlib(value)


def test_stored_text_orjson_cannot_read_is_read_by_the_standard_library() -> None:
    text = json.dumps({"n": 2**70})
    assert loads(text) == {"n": 2**70}


def test_records_refuse_numbers_that_are_not_finite() -> None:
    # orjson would write NaN as null; such content is refused before it is stored.
    assert json_problem({"fine": math.nan}, "c") is not None
    assert json_problem({"fine": [1.0, math.inf]}, "c") is not None
    assert json_problem({"fine": 1000.5, "name": "上海"}, "c") is None
