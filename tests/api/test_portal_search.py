"""The portal's search says, on each record found and before any form, what can be filed on it
now and, if not, why: the rules the filing itself meets (the procedure's intake guards, one open
case per record), never another case's number or anything about its applicant."""

from __future__ import annotations

import html
import re
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import INTAKE, Api, make_api
from conftest import World, snapshot

from engine import db as engine_db
from engine.applicants import filing_outlook
from states.identifiers import make_uscc

OTHER_APPLICANT = {
    "kind": "enterprise",
    "name": "丁某咨询有限公司",
    "identifier": make_uscc("91310000MA1FLD0D1"),
    "email": "ding@example.com",
    "phone": "13900139000",
}


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def _csrf(text: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', text)
    assert m, text[:500]
    return m[1]


def _record(api: Api, ident: str, published_from: date, **content: Any) -> int:
    return api.world.engine.create_record(
        actor=api.world.actor("office_credit_office"),
        subject_kind="enterprise",
        subject_name="上海示例贸易有限公司",
        subject_identifier=ident,
        source_category="administrative_penalty",
        severity="general",
        determining_unit="amr",
        decision_date=published_from,
        published_from=published_from,
        content={"summary": "未按规定公示年度报告", **content},
    )


def _search(api: Api, ident: str, lang: str | None = None) -> httpx.Response:
    query = f"?lang={lang}" if lang else ""
    home = api.client.get("/" + query)
    r = api.client.post("/find" + query, data={"subject": ident, "csrf": _csrf(home.text)})
    assert r.status_code == 200, r.text
    return r


def _items(page: str) -> dict[int, dict[str, dict[str, Any]]]:
    """{record id: {procedure: {"possible": bool, "text": shown words, "apply": link?}}}."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for rid, body in re.findall(
        r'<li class="record" data-record-id="(\d+)">(.*?)</li>\s*'
        r'(?=<li class="record"|</ul>\s*</section>)',
        page,
        re.S,
    ):
        out[int(rid)] = {}
        for proc, possible, inner in re.findall(
            r'data-procedure="(\w+)" data-possible="(yes|no)">(.*?)</li>\s*'
            r"(?=<li class=\"can|</ul>)",
            body,
            re.S,
        ):
            words = html.unescape(re.sub(r"<[^>]+>", " ", inner))
            out[int(rid)][proc] = {
                "possible": possible == "yes",
                "text": " ".join(words.split()),
                "apply": f"record_id={rid}&amp;procedure={proc}" in inner,
            }
    return out


def test_eligibility_is_said_on_each_record_before_any_form(api: Api) -> None:
    w = api.world
    today = w.engine.today()
    ident = make_uscc("91310000MA1FLT0T1")
    old = _record(api, ident, date(2025, 6, 1))  # everything possible
    fresh = _record(api, ident, today)  # within the minimum publicity period
    ordered = _record(api, ident, date(2025, 6, 1), rectification={"status": "required"})
    taken = _record(api, ident, date(2025, 6, 1))
    opened = w.engine.open_case(
        procedure="objection",
        record_id=taken,
        applicant=OTHER_APPLICANT,
        actor=w.actor("office_handler"),
        payload=INTAKE["objection"],
    )
    before = snapshot(w.engine)

    page = _search(api, ident).text
    items = _items(page)
    assert set(items) == {old, fresh, ordered, taken}
    for rid in items:
        assert set(items[rid]) == {"objection", "repair"}, items[rid]

    # Possible: said, and the only ones with a link to the form.
    for proc in ("objection", "repair"):
        assert items[old][proc]["possible"] and items[old][proc]["apply"]
        assert "现在可以在线提出" in items[old][proc]["text"]
    # Too early: the day from which it can be filed, and no link.
    early = items[fresh]["repair"]
    assert not early["possible"] and not early["apply"]
    assert "现在不能提出" in early["text"] and "最短公示期" in early["text"]
    found = re.search(r"最早可于(\d{4}-\d{2}-\d{2})申请", early["text"])
    assert found and date.fromisoformat(found[1]) > today
    assert items[fresh]["objection"]["possible"]  # an objection needs no waiting
    # The rectification a serious listing orders, not yet accepted.
    assert not items[ordered]["repair"]["possible"] and not items[ordered]["repair"]["apply"]
    assert "整改尚未验收通过" in items[ordered]["repair"]["text"]
    # A case open on the record: said, but not which, nor whose.
    assert not items[taken]["objection"]["possible"] and not items[taken]["objection"]["apply"]
    assert "已有办理中的同类案件" in items[taken]["objection"]["text"]
    assert items[taken]["repair"]["possible"]
    for leak in (
        opened.case_no,
        OTHER_APPLICANT["name"],
        OTHER_APPLICANT["email"],
        OTHER_APPLICANT["phone"],
    ):
        assert leak not in page
    assert "ding" not in page and "13900" not in page  # not even masked
    # Said before any form: the results hold no form at all, and a search changes nothing.
    results = page.split('id="results"', 1)[1]
    assert "<form" not in results and "f-grounds" not in page
    assert snapshot(w.engine) == before


def test_in_english_and_in_words(api: Api) -> None:
    ident = make_uscc("91310000MA1FLE0N1")
    fresh = _record(api, ident, api.world.engine.today())
    page = _search(api, ident, "en").text
    repair = _items(page)[fresh]["repair"]
    assert "cannot be filed now" in repair["text"]
    assert "minimum publicity period" in repair["text"] and "earliest date" in repair["text"]
    assert re.search(r"[\u4e00-\u9fff]", repair["text"]) is None
    zh = _search(api, ident, "zh").text
    words = html.unescape(re.sub(r"<[^>]+>", " ", zh.split('id="results"', 1)[1]))
    for code in ("objection", "repair", "published", "general", "administrative_penalty"):
        assert re.search(rf"\b{code}\b", words) is None, code


def test_the_form_says_it_first_and_offers_nothing_it_would_refuse(api: Api) -> None:
    w = api.world
    ident = make_uscc("91310000MA1FLF0F1")
    fresh = _record(api, ident, w.engine.today())
    before = snapshot(w.engine)
    r = api.client.get("/apply", params={"record_id": fresh, "procedure": "repair"})
    assert r.status_code == 200
    assert 'id="not-now"' in r.text and "最早可于" in r.text
    assert "apply-form" not in r.text and 'type="file"' not in r.text
    # The objection on the same record is open to file: the form as before.
    ok = api.client.get("/apply", params={"record_id": fresh, "procedure": "objection"})
    assert ok.status_code == 200 and "apply-form" in ok.text and 'id="not-now"' not in ok.text
    assert snapshot(w.engine) == before


def test_an_empty_or_unknown_identifier(api: Api) -> None:
    home = api.client.get("/")
    empty = api.client.post("/find", data={"subject": "  ", "csrf": _csrf(home.text)})
    assert empty.status_code == 422 and 'id="err-subject"' in empty.text
    none = _search(api, make_uscc("91310000MA1FLN0N1")).text
    assert "没有找到该主体的公示记录" in none
    bad = api.client.post("/find", data={"subject": "x" * 500, "csrf": "forged"})
    assert bad.status_code == 403


def test_one_look_up_for_the_whole_page(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The statements a search's judgement makes do not grow with the records it shows."""
    ids = [world.record() for _ in range(6)]
    calls = {"n": 0}
    for name in ("one", "all", "scalar", "execute"):
        real = getattr(engine_db.Tx, name)

        def counted(self: Any, *a: Any, _real: Any = real, **kw: Any) -> Any:
            calls["n"] += 1
            return _real(self, *a, **kw)

        monkeypatch.setattr(engine_db.Tx, name, counted)
    procedures = ["objection", "repair"]
    filing_outlook(world.engine, ids[:1], procedures)
    one = calls["n"]
    calls["n"] = 0
    judged = filing_outlook(world.engine, ids, procedures)
    assert calls["n"] == one
    assert set(judged) == set(ids)
    assert all(o.possible for by in judged.values() for o in by.values())
