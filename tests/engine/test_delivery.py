"""Notices delivered for real: mail to an SMTP server started here (aiosmtpd), SMS to an HTTP
gateway on loopback, the SMTP server down for a while then back, and the notice as a PDF."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import APPLICANT, World
from helpers import PAYLOADS, drive, open_objection
from mail_support import Smtp
from pypdf import PdfReader
from receiver import receiver

from engine.channels import EmailChannel, InAppChannel, LogChannel, SmsChannel
from engine.outbox import Delivery, Policy, router
from engine.pdf import notice_pdf
from engine.queries import case_notices
from engine.service import SYSTEM


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


def _delivery(w: World, smtp_port: int, sms_url: str | None = None) -> Delivery:
    channels: dict[str, Any] = {
        "log": LogChannel(),
        "inapp": InAppChannel(),
        "email": EmailChannel("127.0.0.1", smtp_port, "credit-office@example.gov.cn", timeout=3),
    }
    if sms_url:
        channels["sms"] = SmsChannel(sms_url, "s3cret", timeout=3)
    return Delivery(
        w.engine, router(channels, {}), Policy(max_attempts=20, base_delay=timedelta(seconds=30))
    )


def _decided(w: World, outcome: str = "revoked") -> Any:
    case = open_objection(w)
    drive(
        w,
        case.case_id,
        "objection",
        ["accept", "mark_disputed", "propose_decision", "approve_decision", "notify"],
        {"propose_decision": {**PAYLOADS["propose_decision"], "outcome": outcome}},
    )
    return case


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def test_objection_result_mailed_in_chinese(world: World, smtp: Smtp) -> None:
    case = _decided(world)
    result = _delivery(world, smtp.port).deliver()
    assert result.failed == 0 and result.dead == 0
    mails = [m for m in smtp.inbox.messages if case.case_no in str(m["Subject"])]
    subjects = [str(m["Subject"]) for m in mails]
    assert f"异议核查结果告知书（{case.case_no}）" in subjects
    letter = next(m for m in mails if "异议核查结果告知书" in str(m["Subject"]))
    assert letter["To"] == APPLICANT["email"]
    body = _text(letter)
    record_id = world.engine.case_view(case.case_id, SYSTEM)["record"]["id"]
    for expected in (
        case.case_no,
        "处理结果：撤销",
        "原处罚决定已被撤销",
        "《行政处罚法》第四十八条",
        "申请复核",
        "60日内依法申请行政复议",
        "6个月内依法向人民法院提起行政诉讼",
        f"所涉信用记录：编号{record_id}，",  # the record, not only its subject's name
        "行政处罚，",
    ):
        assert expected in body, (expected, body)
    assert "<p>" not in body
    html_part = letter.get_body(preferencelist=("html",))
    assert html_part is not None and "<h1>" in str(html_part.get_content())
    # What was sent is what is kept with the case, with its template and version.
    kept = case_notices(world.engine, case.case_id, SYSTEM, "zh", "applicant")
    result_notice = next(n for n in kept if n["name"] == "objection_result")
    assert result_notice["subject"] == str(letter["Subject"])
    assert (result_notice["template"], result_notice["template_version"]) == ("objection_result", 3)
    assert {"channel": "email", "status": "sent", "attempts": 1} in result_notice["deliveries"]
    assert {"channel": "inapp", "status": "sent", "attempts": 1} in result_notice["deliveries"]


def test_smtp_down_then_back_every_message_once(world: World, smtp: Smtp) -> None:
    cases = [_decided(world, o) for o in ("revoked", "upheld")]
    smtp.stop()
    d = _delivery(world, smtp.port)
    first = d.deliver()
    assert first.failed > 0 and first.dead == 0
    for minutes in (1, 2, 4, 8):
        world.clock.advance(minutes=minutes)
        d.deliver()
    assert smtp.inbox.messages == []
    with world.engine.db.read() as conn:
        pending = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE channel = 'email' AND status = 'pending'")
        ).scalar_one()
        failures = conn.execute(
            sa.text("SELECT count(*) FROM outbox_attempts WHERE channel = 'email' AND NOT ok")
        ).scalar_one()
    assert pending > 0 and failures >= pending * 2
    smtp.start()
    world.clock.advance(hours=2)
    while d.deliver().sent:
        pass
    with world.engine.db.read() as conn:
        expected = (
            conn.execute(sa.text("SELECT idempotency_key FROM outbox WHERE channel = 'email'"))
            .scalars()
            .all()
        )
        statuses = (
            conn.execute(sa.text("SELECT DISTINCT status FROM outbox WHERE channel = 'email'"))
            .scalars()
            .all()
        )
    keys = [str(m["X-Redress-Key"]) for m in smtp.inbox.messages]
    assert sorted(keys) == sorted(expected)  # every one delivered, none twice, none lost
    assert statuses == ["sent"]
    mailed = {str(m["Subject"]).split("（")[-1].rstrip("）") for m in smtp.inbox.messages}
    assert {c.case_no for c in cases} <= mailed


def test_sms_through_the_gateway(world: World, smtp: Smtp) -> None:
    person = {**APPLICANT, "phone": "13800000000"}
    case = world.engine.open_case(
        procedure="objection",
        record_id=world.record(),
        applicant=person,
        actor=world.actor("office_handler"),
        payload={"grounds": "处罚已撤销", "commitment_signed": True},
    )
    with receiver() as gateway:
        result = _delivery(world, smtp.port, gateway.url).deliver()
        assert result.failed == 0
        (sms,) = [b for b in gateway.bodies if b.get("to") == "13800000000"]
        assert case.case_no in sms["text"]
        (req,) = [r for r in gateway.requests if r["body"].get("to") == "13800000000"]
        assert req["headers"]["Idempotency-Key"].endswith(":receipt:sms")


def test_notice_as_pdf(world: World, smtp: Smtp) -> None:
    case = _decided(world)
    _delivery(world, smtp.port).deliver()
    kept = case_notices(world.engine, case.case_id, SYSTEM, "zh", "applicant")
    row = next(n for n in kept if n["name"] == "objection_result")
    with world.engine.db.read() as conn:
        body = conn.execute(
            sa.text("SELECT body FROM notices WHERE id = :i"), {"i": row["id"]}
        ).scalar_one()
    pdf = notice_pdf(row["subject"], body, f"案件编号 {case.case_no}")
    assert pdf.startswith(b"%PDF")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
    compact = "".join(text.split())
    for expected in ("异议核查结果告知书", case.case_no, "处理结果：撤销", "行政复议"):
        assert expected in compact, (expected, text)


def test_staff_reminders_go_to_the_assignee_by_mail(world: World, smtp: Smtp) -> None:
    from conftest import at

    from engine.deadlines import Deadlines

    eng = world.engine
    with eng.db.write() as conn:
        conn.execute(
            sa.text("UPDATE users SET email = :e WHERE name = 'office_handler'"),
            {"e": "handler@office.example"},
        )
    case = open_objection(world)
    eng.assign(case.case_id, world.actor("office_handler").user_id, world.actor("office_head"))
    world.clock.set(at("2026-04-08 09:00"))
    assert Deadlines(eng).sweep().actions == {"reminder": 1}
    _delivery(world, smtp.port).deliver()
    (mail,) = [m for m in smtp.inbox.messages if m["To"] == "handler@office.example"]
    assert case.case_no in str(mail["Subject"]) and "2026-04-09" in _text(mail)
