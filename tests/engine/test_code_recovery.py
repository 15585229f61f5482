"""A lost access code sent again to the contact on file: the old code stops working at once,
the case's applicant sessions end, the timeline records it, and the new code goes out through
the outbox (mail to an SMTP server started here, SMS to a gateway on loopback); a wrong contact
changes nothing and gets the same answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import APPLICANT, World, snapshot
from helpers import open_objection
from mail_support import Smtp
from receiver import receiver

from engine.applicants import (
    REISSUE_MAX,
    REISSUED,
    AccessGuard,
    TooManyCodeRequests,
    authenticate,
    check_code_request,
    contact_key,
    request_new_code,
    status_view,
)
from engine.channels import EmailChannel, InAppChannel, LogChannel, SmsChannel
from engine.demo import drive, open_complaint, open_identification
from engine.outbox import Delivery, Policy, router
from engine.service import SYSTEM
from engine.sessions import Sessions
from states.errors import InvalidPayload, NotFound

CLIENT = "198.51.100.7"
CODE = re.compile(r"[23456789A-HJ-NP-Z]{10}")


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def guard(world: World) -> AccessGuard:
    return AccessGuard(world.engine, slow_after=3, lock_after=10, window_s=900)


def _delivery(w: World, smtp_port: int, sms_url: str | None = None) -> Delivery:
    channels: dict[str, Any] = {
        "log": LogChannel(),
        "inapp": InAppChannel(),
        "email": EmailChannel("127.0.0.1", smtp_port, "credit-office@example.gov.cn", timeout=3),
    }
    if sms_url:
        channels["sms"] = SmsChannel(sms_url, "s3cret", timeout=3)
    return Delivery(w.engine, router(channels, {}), Policy(max_attempts=3))


def _text(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _events(w: World, case_id: int) -> list[dict[str, Any]]:
    return [e for e in w.engine.events(case_id, SYSTEM) if e["trigger"] == REISSUED]


def _state(w: World, case_id: int) -> tuple[Any, ...]:
    with w.engine.db.read() as conn:
        row = conn.execute(
            sa.text(
                "SELECT access_code_hash, event_seq, last_hash, version FROM cases WHERE id = :i"
            ),
            {"i": case_id},
        ).one()
    return tuple(row)


def test_a_new_code_by_mail_the_old_one_refused(
    world: World, guard: AccessGuard, smtp: Smtp
) -> None:
    w = world
    case = open_objection(w)
    assert case.access_code is not None
    _delivery(w, smtp.port).deliver()  # the receipt
    smtp.inbox.messages.clear()
    sessions = Sessions(w.engine)
    sid = sessions.start_applicant(case.case_id)
    assert sessions.applicant(sid)[0] == case.case_id
    version = w.engine.case_view(case.case_id, SYSTEM)["version"]

    # The address as typed by a person: other case, spaces around.
    delay = request_new_code(w.engine, case.case_no.lower(), "  LEGAL@Example.com ", guard, CLIENT)
    assert delay == 0.0

    # The old code stops working at once, and the sessions it opened end.
    with pytest.raises(NotFound):
        authenticate(w.engine, case.case_no, case.access_code)
    with pytest.raises(Exception, match="session"):
        sessions.applicant(sid)
    (event,) = _events(w, case.case_id)
    assert event["role"] == "applicant" and event["from"] == event["to"] == "submitted"
    # Recorded without a new version: a handler's open form stays current.
    assert w.engine.case_view(case.case_id, SYSTEM)["version"] == version

    # The new code goes by mail to the address on file, and only there.
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT channel, recipient FROM outbox WHERE case_id = :c AND name = :n"),
            {"c": case.case_id, "n": REISSUED},
        ).all()
    assert [tuple(r) for r in rows] == [("email", APPLICANT["email"])]
    result = _delivery(w, smtp.port).deliver()
    assert result.sent == 1 and result.failed == 0
    (mail,) = smtp.inbox.messages
    assert mail["To"] == APPLICANT["email"]
    assert str(mail["Subject"]) == f"查询码重新发送通知（{case.case_no}）"
    body = _text(mail)
    assert case.case_no in body and "原查询码自即日起不再有效" in body
    found = CODE.search(body.split("新的查询码为", 1)[1])
    assert found is not None
    new_code = found.group(0)
    assert new_code != case.access_code and new_code not in str(mail["Subject"])
    me = authenticate(w.engine, case.case_no, new_code)
    assert me.case_id == case.case_id

    # The applicant's own timeline and the letter kept with the case say it happened.
    view = status_view(w.engine, me, "zh")
    assert "查询码已重新发送（申请人申请）" in [e["label"] for e in view["timeline"]]
    assert REISSUED in [n["name"] for n in view["notices"]]
    en = status_view(w.engine, me, "en")
    assert "access code sent again, as asked" in [e["label"] for e in en["timeline"]]


def test_a_new_code_by_sms_to_the_phone_on_file(
    world: World, guard: AccessGuard, smtp: Smtp
) -> None:
    """A complaint filed on the hotline, with only a phone on file (and no record)."""
    w = world
    other = open_objection(w)
    phoned = open_complaint(w.engine, w.staff)  # phone 13800000000
    assert phoned.access_code is not None and other.access_code is not None
    request_new_code(w.engine, phoned.case_no, "+86 138-0000-0000", guard, CLIENT)
    with pytest.raises(NotFound):
        authenticate(w.engine, phoned.case_no, phoned.access_code)
    with receiver() as gateway:
        result = _delivery(w, smtp.port, gateway.url).deliver()
        assert result.failed == 0
        mine = [
            b for b in gateway.bodies if phoned.case_no in b["text"] and "新查询码" in b["text"]
        ]
    assert [b["to"] for b in mine] == ["13800000000"]
    found = CODE.search(mine[0]["text"].split("新查询码为", 1)[1])
    assert found is not None
    assert authenticate(w.engine, phoned.case_no, found.group(0)).case_id == phoned.case_id
    # Nobody else's code changed.
    assert authenticate(w.engine, other.case_no, other.access_code).case_id == other.case_id


@pytest.mark.parametrize(
    ("number", "contact"),
    [
        ("own", "someone-else@example.com"),  # the case's number, another address
        ("own", "13800138000"),  # a phone, where only an email is on file
        ("YY20260407ZZZZZZ", "legal@example.com"),  # no such case, the right address
    ],
)
def test_a_wrong_contact_changes_nothing_and_gets_the_same_answer(
    world: World, guard: AccessGuard, number: str, contact: str
) -> None:
    w = world
    case = open_objection(w)
    assert case.access_code is not None
    sid = Sessions(w.engine).start_applicant(case.case_id)
    before, state = snapshot(w.engine), _state(w, case.case_id)
    answer = request_new_code(
        w.engine, case.case_no if number == "own" else number, contact, guard, CLIENT
    )
    assert answer == 0.0  # exactly what a match answers
    assert snapshot(w.engine) == before and _state(w, case.case_id) == state
    assert authenticate(w.engine, case.case_no, case.access_code).case_id == case.case_id
    assert Sessions(w.engine).applicant(sid)[0] == case.case_id
    assert _events(w, case.case_id) == []


def test_an_anonymous_case_without_contact_is_left_alone(world: World, guard: AccessGuard) -> None:
    w = world
    opened = open_complaint(w.engine, w.staff, anonymous=True)
    before = snapshot(w.engine)
    assert request_new_code(w.engine, opened.case_no, "legal@example.com", guard, CLIENT) == 0.0
    assert snapshot(w.engine) == before


def test_requests_are_counted_by_the_wrong_code_guard(world: World, guard: AccessGuard) -> None:
    """Each request counts as a wrong code on (case number, client), matched or not: slowed
    after a few, refused (429) after more, and a match answers like a miss throughout."""
    w = world
    case = open_objection(w)
    delays = []
    for i in range(10):
        contact = APPLICANT["email"] if i % 2 else "nobody@example.com"
        delays.append(request_new_code(w.engine, case.case_no, contact, guard, CLIENT))
    assert delays[:3] == [0.0, 0.0, 0.0] and all(d > 0 for d in delays[3:])
    with pytest.raises(TooManyCodeRequests) as refused:
        request_new_code(w.engine, case.case_no, APPLICANT["email"], guard, CLIENT)
    assert "分钟" in refused.value.message_zh and refused.value.retry_after > 0
    with pytest.raises(TooManyCodeRequests):
        request_new_code(w.engine, case.case_no, "nobody@example.com", guard, CLIENT)
    # However many times it matched, the code changed at most REISSUE_MAX times a day.
    assert len(_events(w, case.case_id)) == REISSUE_MAX
    # From the applicant's own phone (another client) the case is not locked; the day's
    # bound still holds, and a day later it is lifted.
    other = "203.0.113.9"
    before = _state(w, case.case_id)
    request_new_code(w.engine, case.case_no, APPLICANT["email"], guard, other)
    assert _state(w, case.case_id) == before
    w.clock.advance(hours=24, minutes=1)
    request_new_code(w.engine, case.case_no, APPLICANT["email"], guard, other)
    assert _state(w, case.case_id)[0] != before[0]


def test_a_code_is_not_reset_when_it_cannot_be_sent(
    world: World, guard: AccessGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    case = open_objection(w)
    assert case.access_code is not None
    monkeypatch.setattr(w.engine.settings, "applicant_channels", ["sms"])
    before = snapshot(w.engine)
    request_new_code(w.engine, case.case_no, APPLICANT["email"], guard, CLIENT)
    assert snapshot(w.engine) == before
    assert authenticate(w.engine, case.case_no, case.access_code).case_id == case.case_id


@pytest.mark.parametrize(
    ("case_no", "contact", "field"),
    [
        ("", "legal@example.com", "case_no"),
        ("YY-2026", "legal@example.com", "case_no"),
        ("YY20260407K3M9QX", "", "contact"),
        ("YY20260407K3M9QX", "not an address", "contact"),
        ("YY20260407K3M9QX", "a@b", "contact"),
        ("YY20260407K3M9QX", "12\x0034", "contact"),
    ],
)
def test_a_malformed_request_names_its_field_and_counts_nothing(
    world: World, guard: AccessGuard, case_no: str, contact: str, field: str
) -> None:
    before = snapshot(world.engine)
    with pytest.raises(InvalidPayload) as bad:
        request_new_code(world.engine, case_no, contact, guard, CLIENT)
    assert [e.field for e in bad.value.errors] == [field]
    assert bad.value.errors[0].message_zh
    assert snapshot(world.engine) == before
    assert guard.locked(case_no or "-", CLIENT) is None
    with world.engine.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM access_failures")).scalar() == 0


def test_contacts_compare_as_people_type_them() -> None:
    assert contact_key(" Legal@Example.COM ") == ("email", "legal@example.com")
    assert (
        contact_key("+86 138-0013-8000") == contact_key("13800138000") == ("phone", "13800138000")
    )
    assert contact_key("021-12345678") == ("phone", "02112345678")
    assert contact_key("legal at example") is None and contact_key("1234") is None
    assert check_code_request(" yy20260407k3m9qx ", " a@b.cn ") == ("YY20260407K3M9QX", "a@b.cn")


def test_the_reissue_is_in_the_event_chain(world: World, guard: AccessGuard) -> None:
    w = world
    case = open_objection(w)
    request_new_code(w.engine, case.case_no, APPLICANT["email"], guard, CLIENT)
    assert len(_events(w, case.case_id)) == 1
    assert w.engine.verify_audit() == []


def test_a_party_gets_a_code_only_once_its_letter_has_given_one(
    world: World, guard: AccessGuard
) -> None:
    """An identification's party learns of the case, and its code, from the prior notice:
    asking for a code before that letter is sent gives nothing."""
    w = world
    opened = open_identification(
        w.engine, w.staff, "government", "某区城市管理局", "party@example.gov.cn"
    )
    before = snapshot(w.engine)
    request_new_code(w.engine, opened.case_no, "party@example.gov.cn", guard, CLIENT)
    assert snapshot(w.engine) == before
    drive(w.engine, w.staff, opened.case_id, "identification", ["propose", "send_prior_notice"])
    request_new_code(w.engine, opened.case_no, "party@example.gov.cn", guard, CLIENT)
    assert len(_events(w, opened.case_id)) == 1
