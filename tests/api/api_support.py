"""Helpers for the HTTP API tests: one app and client per test, requests by user name.

Not a conftest.py on purpose: conftest modules outside packages all import as `conftest`, and a
second one here would shadow tests/conftest.py for `from conftest import ...` elsewhere. Each
test module declares its own `api` fixture with `make_api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import APPLICANT, World
from fastapi.testclient import TestClient

from api.app import create_app
from engine.demo import (
    OBJECTION_INTAKE,
    OBJECTION_PATHS,
    PAYLOADS,
    REPAIR_INTAKE,
    REPAIR_PATHS,
    actor_key,
)

PROBLEM = "application/problem+json"
V1 = "/api/v1"
DEPARTMENTS = ("office", "amr", "hrss")
ROLES = ("handler", "reviewer", "head", "credit_office", "admin")
USERS = tuple(f"{d}_{r}" for d in DEPARTMENTS for r in ROLES)
PATHS = {"objection": OBJECTION_PATHS, "repair": REPAIR_PATHS}
INTAKE = {"objection": OBJECTION_INTAKE, "repair": REPAIR_INTAKE}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64)) + b"\xff\xd9"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(48)


class Api:
    """A TestClient on a fresh app over the world's engine, with per-user helpers."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.app = create_app(world.engine)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    # -- raw requests -------------------------------------------------------------------------

    def headers(self, user: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        out = dict(extra or {})
        if user is not None:
            out["Authorization"] = f"Bearer {self.world.tokens[user]}"
        return out

    def get(
        self, path: str, user: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.client.get(V1 + path, headers=self.headers(user, headers), **kw)

    def post(
        self, path: str, user: str | None = None, headers: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        return self.client.post(V1 + path, headers=self.headers(user, headers), **kw)

    # -- cases -------------------------------------------------------------------------------

    def open_case(
        self,
        procedure: str = "objection",
        user: str = "office_handler",
        record_id: int | None = None,
        applicant: dict[str, Any] | None = None,
        key: str | None = None,
        **body: Any,
    ) -> dict[str, Any]:
        """File a case through POST /cases; returns OpenedOut (asserting 201)."""
        payload = {
            "procedure": procedure,
            "record_id": record_id or self.world.record(),
            "applicant": applicant or APPLICANT,
            "payload": INTAKE[procedure],
            **body,
        }
        r = self.post(
            "/cases", user, headers={"Idempotency-Key": key} if key else None, json=payload
        )
        assert r.status_code == 201, r.text
        out: dict[str, Any] = r.json()
        return out

    def act(
        self,
        case_id: int,
        trigger: str,
        user: str,
        version: int | str | None,
        payload: dict[str, Any] | None = None,
        key: str | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        if version is not None:
            headers["If-Match"] = str(version)
        if key is not None:
            headers["Idempotency-Key"] = key
        body = PAYLOADS.get(trigger, {}) if payload is None else payload
        return self.post(f"/cases/{case_id}/actions/{trigger}", user, headers=headers, json=body)

    def drive(self, case_id: int, procedure: str, steps: list[str], version: int) -> int:
        """Fire each step as its natural user (engine.demo.actor_key); returns the version."""
        for trig in steps:
            r = self.act(case_id, trig, actor_key(procedure, trig), version)
            assert r.status_code == 200, (trig, r.text)
            version = r.json()["version"]
        return version

    def case_in(
        self, procedure: str, steps: list[str], record_id: int | None = None
    ) -> tuple[int, int]:
        """A new case (filed by office_handler) driven along `steps`: (case_id, version)."""
        opened = self.open_case(procedure, record_id=record_id)
        return opened["case_id"], self.drive(opened["case_id"], procedure, steps, 1)

    def case(self, case_id: int, user: str = "office_handler") -> dict[str, Any]:
        r = self.get(f"/cases/{case_id}", user)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    # -- applicants --------------------------------------------------------------------------

    def apply(
        self, procedure: str = "objection", record_id: int | None = None, **extra: Any
    ) -> Any:
        body: dict[str, Any] = {
            "procedure": procedure,
            "record_id": record_id or self.world.record(),
            "applicant": APPLICANT,
            "grounds": "该处罚决定已被依法撤销",
            "commitment_signed": True,
        }
        if procedure == "repair":
            body["obligations_met"] = True
        body.update(extra)
        return self.post("/applications", json=body)

    def status(self, case_no: str, code: str, path: str = "", **kw: Any) -> httpx.Response:
        headers = {"X-Access-Code": code, **kw.pop("headers", {})}
        if kw.pop("method", "GET") == "POST":
            return self.client.post(f"{V1}/status/{case_no}{path}", headers=headers, **kw)
        return self.client.get(f"{V1}/status/{case_no}{path}", headers=headers, **kw)


def make_api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    # Attachments go to a throwaway directory, never the project's var/ (settings are shared and
    # cached; monkeypatch puts the value back after the test).
    monkeypatch.setattr(world.engine.settings, "var_dir", tmp_path / "var")
    return Api(world)


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert an RFC 9457 answer with the members every error has; return its body."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["detail_zh"], str) and body["detail_zh"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body.get("code"), str) and body["code"], body
    if code is not None:
        assert body["code"] == code, body
    return body


def client_error(r: httpx.Response) -> dict[str, Any]:
    """Assert some 4xx as problem+json (never a 500); return its body."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM), r.headers["content-type"]
    body: dict[str, Any] = r.json()
    assert body["status"] == r.status_code and body["detail"], body
    return body


def fields(body: dict[str, Any]) -> dict[str, str]:
    """A 422's `errors` as {field: code}."""
    return {e["field"]: e["code"] for e in body["errors"]}


def wrong_check_char(identifier: str) -> str:
    """The same USCC with a different (wrong) check character."""
    last = identifier[-1]
    return identifier[:-1] + ("0" if last != "0" else "1")
