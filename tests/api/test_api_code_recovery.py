"""A lost access code, through HTTP: the portal page (linked from the status sign-in) and
`POST /api/v1/status/{case_no}/access-code`. The same answer whether or not anything matched,
the code only ever in the mail (an SMTP server started here), the old code refused at once,
the console's timeline saying it happened, and the wrong-code guard's bound on requests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from api_support import Api, make_api, problem
from conftest import APPLICANT, World, snapshot
from mail_support import Smtp

from engine.applicants import CODE_REQUESTED, REISSUED
from engine.channels import EmailChannel, InAppChannel, LogChannel
from engine.outbox import Delivery, Policy, router

CODE = re.compile(r"[23456789A-HJ-NP-Z]{10}")
PAGE = "/access-code"


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    real: Callable[..., Awaitable[Any]] = asyncio.sleep

    async def no_wait(delay: float, *args: Any, **kwargs: Any) -> Any:
        return await real(0, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", no_wait)  # the slow-down is the guard's, tested there
    monkeypatch.setattr("api.web.portal.time.sleep", lambda s: None)
    return make_api(world, tmp_path, monkeypatch)


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    server.start()
    yield server
    server.stop()


def _deliver(api: Api, smtp: Smtp) -> None:
    channels: dict[str, Any] = {
        "log": LogChannel(),
        "inapp": InAppChannel(),
        "email": EmailChannel("127.0.0.1", smtp.port, "credit-office@example.gov.cn", timeout=3),
    }
    result = Delivery(api.world.engine, router(channels, {}), Policy(max_attempts=3)).deliver()
    assert result.failed == 0 and result.dead == 0


def _mailed_code(smtp: Smtp, case_no: str) -> str:
    mails = [
        m for m in smtp.inbox.messages if str(m["Subject"]) == f"查询码重新发送通知（{case_no}）"
    ]
    assert len(mails) == 1, [str(m["Subject"]) for m in smtp.inbox.messages]
    part = mails[0].get_body(preferencelist=("plain",))
    assert part is not None
    found = CODE.search(str(part.get_content()).split("新的查询码为", 1)[1])
    assert found is not None
    return found.group(0)


def _csrf(text: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', text)
    assert m, text[:500]
    return m[1]


def _filed(api: Api) -> tuple[str, str]:
    r = api.apply("objection")
    assert r.status_code == 201, r.text
    return r.json()["case_no"], r.json()["access_code"]


def _ask(api: Api, case_no: str, contact: str, lang: str = "zh") -> httpx.Response:
    form = api.client.get(f"{PAGE}?lang={lang}")
    assert form.status_code == 200
    return api.client.post(
        f"{PAGE}?lang={lang}",
        data={"case_no": case_no, "contact": contact, "csrf": _csrf(form.text)},
    )


def _answer(page: str) -> str:
    m = re.search(r'<div class="alert ok" id="code-requested" role="status">([^<]*)</div>', page)
    assert m, page[:2000]
    return m[1]


def _outbox_codes(api: Api, case_no: str) -> list[str]:
    with api.world.engine.db.read() as conn:
        payloads = conn.execute(
            sa.text(
                "SELECT o.payload FROM outbox o JOIN cases c ON c.id = o.case_id "
                "WHERE c.case_no = :n AND o.name = :name"
            ),
            {"n": case_no, "name": REISSUED},
        ).scalars()
        return [json.loads(p)["context"]["access_code"] for p in payloads]


def test_the_portal_sends_a_new_code_by_mail(api: Api, smtp: Smtp) -> None:
    case_no, old_code = _filed(api)
    # The status sign-in links to the page.
    home = api.client.get("/status")
    assert f'href="{PAGE}"' in home.text and "忘记查询码？" in home.text
    # Signed in with the old code in this browser: that session ends too.
    signed = api.client.post(
        "/status",
        data={"case_no": case_no, "access_code": old_code, "csrf": _csrf(home.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    assert api.client.get(f"/status/{case_no}", follow_redirects=False).status_code == 200

    r = _ask(api, case_no, APPLICANT["email"].upper())
    assert r.status_code == 200
    assert _answer(r.text) == CODE_REQUESTED.zh
    (new_code,) = _outbox_codes(api, case_no)
    assert new_code not in r.text  # sent, never shown
    assert api.client.get(f"/status/{case_no}", follow_redirects=False).status_code == 303
    assert api.status(case_no, old_code).status_code == 404

    _deliver(api, smtp)
    assert _mailed_code(smtp, case_no) == new_code
    mine = api.status(case_no, new_code)
    assert mine.status_code == 200
    labels = [e["label"] for e in mine.json()["timeline"]]
    assert "查询码已重新发送（申请人申请）" in labels


def test_the_same_answer_whatever_matched(api: Api) -> None:
    case_no, code = _filed(api)
    before = snapshot(api.world.engine)
    answers = {
        "wrong contact": _ask(api, case_no, "someone@example.com"),
        "no such case": _ask(api, "YY20260407ZZZZZZ", APPLICANT["email"]),
    }
    assert snapshot(api.world.engine) == before
    right = _ask(api, case_no, APPLICANT["email"])
    assert {r.status_code for r in (*answers.values(), right)} == {200}
    assert {_answer(r.text) for r in (*answers.values(), right)} == {CODE_REQUESTED.zh}
    assert api.status(case_no, code).status_code == 404  # the right one did replace it
    en = _ask(api, case_no, "someone@example.com", "en")
    assert _answer(en.text) == CODE_REQUESTED.en


def test_bad_input_is_named_beside_its_field_and_changes_nothing(api: Api) -> None:
    case_no, code = _filed(api)
    before = snapshot(api.world.engine)
    r = _ask(api, "YY-20260407", "")
    assert r.status_code == 422
    assert "案件编号应为4至32位字母或数字" in r.text and 'id="err-case_no"' in r.text
    assert 'id="err-contact"' in r.text and "必填" in r.text
    r = _ask(api, case_no, "not a contact")
    assert r.status_code == 422
    assert "请输入申请时登记的电子邮箱或手机号码" in r.text and 'id="code-requested"' not in r.text
    assert f'value="{case_no}"' in r.text  # what was typed stays
    forged = api.client.post(
        PAGE, data={"case_no": case_no, "contact": APPLICANT["email"], "csrf": "forged"}
    )
    assert forged.status_code == 403 and "表单已过期" in forged.text
    assert snapshot(api.world.engine) == before
    assert api.status(case_no, code).status_code == 200
    with api.world.engine.db.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM access_failures")).scalar() == 0


def test_requests_are_bounded_by_the_wrong_code_guard(api: Api) -> None:
    case_no, _ = _filed(api)
    for i in range(10):
        contact = APPLICANT["email"] if i % 3 == 0 else f"guess{i}@example.com"
        assert _ask(api, case_no, contact).status_code == 200
    page = _ask(api, case_no, APPLICANT["email"])
    assert page.status_code == 429 and "请求次数过多" in page.text
    assert 0 < int(page.headers["retry-after"]) <= 900
    assert _ask(api, case_no, "guess@example.com").status_code == 429  # a miss: the same
    over = api.post(f"/status/{case_no}/access-code", json={"contact": "x@example.com"})
    body = problem(over, 429, "too_many_attempts")
    assert "请求次数过多" in body["detail_zh"] and body["retry_after"] > 0
    # At most three new codes a day, whoever asks.
    assert len(_outbox_codes(api, case_no)) == 3


def test_the_api_answers_202_the_same_either_way(api: Api, smtp: Smtp) -> None:
    case_no, old_code = _filed(api)
    before = snapshot(api.world.engine)
    miss = api.post(f"/status/{case_no}/access-code", json={"contact": "nobody@example.com"})
    unknown = api.post("/status/YY20260407ZZZZZZ/access-code", json={"contact": "a@b.cn"})
    assert snapshot(api.world.engine) == before
    hit = api.post(f"/status/{case_no}/access-code", json={"contact": APPLICANT["email"]})
    assert {r.status_code for r in (miss, unknown, hit)} == {202}
    assert miss.json() == unknown.json() == hit.json()
    assert hit.json() == {"message": CODE_REQUESTED.en, "message_zh": CODE_REQUESTED.zh}
    (new_code,) = _outbox_codes(api, case_no)
    assert new_code not in hit.text
    assert api.status(case_no, old_code).status_code == 404
    _deliver(api, smtp)
    assert _mailed_code(smtp, case_no) == new_code
    assert api.status(case_no, new_code).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("YY20260407ZZZZZZ", {"contact": "not a contact"}, "contact"),
        ("YY20260407ZZZZZZ", {"contact": ""}, "contact"),
        ("YY20260407ZZZZZZ", {"contact": "a@b.cn", "code": "x"}, "code"),
        ("YY20260407ZZZZZZ", {}, "contact"),
        ("YY20260407ZZZZZZ", {"contact": "12\u000034"}, "contact"),
        ("YY-1", {"contact": "a@b.cn"}, "case_no"),
    ],
)
def test_the_api_refuses_bad_input_by_field(
    api: Api, path: str, body: dict[str, Any], field: str
) -> None:
    before = snapshot(api.world.engine)
    r = api.post(f"/status/{path}/access-code", json=body)
    out = problem(r, 422)
    assert field in [e["field"] for e in out["errors"]], out
    assert snapshot(api.world.engine) == before


def test_documented_in_openapi(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    op = spec["paths"]["/api/v1/status/{case_no}/access-code"]["post"]
    assert set(op["responses"]) >= {"202", "422", "429"}
    assert op["summary"] and "same" in op["description"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert schema["required"] == ["contact"] and schema["additionalProperties"] is False


def test_the_console_shows_it_happened(api: Api) -> None:
    case_no, _ = _filed(api)
    assert _ask(api, case_no, APPLICANT["email"]).status_code == 200
    page = api.client.get("/console/login")
    signed = api.client.post(
        "/console/login",
        data={"token": api.world.tokens["office_handler"], "csrf": _csrf(page.text)},
        follow_redirects=False,
    )
    assert signed.status_code == 303, signed.text
    cases = api.get("/cases", "office_handler", params={"case_no": case_no}).json()["items"]
    case_page = api.client.get(f"/console/cases/{cases[0]['id']}")
    assert case_page.status_code == 200
    timeline = case_page.text.split('id="timeline"', 1)[1].split("</section>", 1)[0]
    assert f'data-trigger="{REISSUED}"' in timeline
    assert "查询码已重新发送（申请人申请）" in timeline


def test_an_anonymous_complaint_is_left_alone(api: Api) -> None:
    r = api.post(
        "/complaints",
        json={
            "complainant": {"anonymous": True},
            "keep_access_code": True,
            "subject_name": "某区城市管理局",
            "grounds": "拖欠工程款",
        },
    )
    assert r.status_code == 201, r.text
    case_no, code = r.json()["case_no"], r.json()["access_code"]
    before = snapshot(api.world.engine)
    answer = api.post(f"/status/{case_no}/access-code", json={"contact": "a@b.cn"})
    assert answer.status_code == 202 and answer.json()["message_zh"] == CODE_REQUESTED.zh
    assert snapshot(api.world.engine) == before
    assert api.status(case_no, code).status_code == 200
