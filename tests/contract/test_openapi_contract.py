"""The API against its own OpenAPI description, fuzzed by schemathesis: no 5xx, and every
response (status, content type, headers, body) is one the description documents.

Runs on SQLite with demo data and a handler's token, so generated requests reach real cases
as well as missing ones.
"""

from __future__ import annotations

import os
import tempfile

import hypothesis
import schemathesis
from conftest import at
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from engine.clock import FixedClock
from engine.db import Database
from engine.demo import load_demo
from engine.migrate import upgrade
from engine.service import Engine


def _app() -> tuple[object, dict[str, str]]:
    directory = tempfile.mkdtemp(prefix="redress-contract-")
    db = Database(f"sqlite:///{os.path.join(directory, 'contract.db')}")
    upgrade(db.engine)
    engine = Engine(db, clock=FixedClock(at("2026-04-07 09:00")))
    staff, _ = load_demo(engine)
    return create_app(engine), {"Authorization": f"Bearer {staff.tokens['office_admin']}"}


APP, HEADERS = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@hypothesis.settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_openapi(case: schemathesis.Case) -> None:
    # The wrong-code limiter slows repeated failures on purpose; here it would only slow the
    # fuzzing down (its 429 is tested in tests/api).
    APP.state.access_guard.clear()
    case.call_and_validate(headers=HEADERS, checks=CHECKS)


def test_openapi_has_examples_on_every_operation() -> None:
    spec = APP.openapi()  # type: ignore[attr-defined]
    components = spec["components"]["schemas"]
    missing = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if not op.get("summary"):
                missing.append(f"{method.upper()} {path}: summary")
            ok = (
                op["responses"].get("200")
                or op["responses"].get("201")
                or op["responses"].get("202")
            )
            content = (ok or {}).get("content", {})
            has_example = any("example" in c or "examples" in c for c in content.values())
            for c in content.values():
                ref = c.get("schema", {}).get("$ref", "")
                name = ref.rsplit("/", 1)[-1]
                if name and "examples" in components.get(name, {}):
                    has_example = True
                items = c.get("schema", {}).get("items", {}).get("$ref", "")
                if items and "examples" in components.get(items.rsplit("/", 1)[-1], {}):
                    has_example = True
            if not has_example:
                missing.append(f"{method.upper()} {path}: response example")
    assert missing == []
