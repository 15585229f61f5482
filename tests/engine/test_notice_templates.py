"""The official notices: every template renders, in zh and en, for every transition that emits it.

The contexts are real: cases are driven along every path of every procedure version, and the
letters are rendered from what the commands queued in the outbox.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import date
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from conftest import World
from helpers import OBJECTION_PATHS, PAYLOADS, REPAIR_PATHS, drive, open_objection, open_repair

from engine import notices
from engine.applicants import authenticate
from engine.definitions import builtin
from engine.demo import (
    COMPLAINT_PATHS,
    IDENTIFICATION_PATHS,
    PROCEDURE_PAYLOADS,
    open_complaint,
    open_identification,
)
from engine.factory import build_delivery
from engine.pdf import notice_pdf
from engine.service import SYSTEM
from states.errors import NotFound
from states.identifiers import make_uscc
from states.machine import Procedure

VERSIONS = [("objection", 1), ("repair", 1), ("repair", 2)]
BODY_PROCEDURES = ("identification", "complaint")
ALLOWED_TAGS = {"h1", "h2", "p", "ul", "li", "b", "br"}
TAG = re.compile(r"</?\s*([a-zA-Z0-9]+)[^>]*>")
# Decision letters: they must state the reasons and the legal basis.
DECISIONS = {
    "non_acceptance",
    "objection_result",
    "repair_decision",
    "repair_denial",
    "repair_revocation",
}
WITH_REMEDIES = {"objection_result", "non_acceptance", "repair_denial", "repair_revocation"}
PROPOSE = PAYLOADS["propose_decision"]
UNDER_REVIEW = OBJECTION_PATHS["under_review"]

# Extra paths beyond the demo's, so that every branch that emits a notice is taken.
OBJECTION_EXTRA: list[tuple[list[str], dict[str, dict[str, Any]]]] = [
    # Review confirms a wrongful listing → restoring → reputation restored.
    ([*UNDER_REVIEW, "review_confirm", "restore_reputation"], {}),
    # Review confirms an "upheld" decision → closed.
    ([*UNDER_REVIEW, "review_confirm"], {"propose_decision": {**PROPOSE, "outcome": "upheld"}}),
    # Review overturns → verifying again, forwarded to the unit, decided and notified again.
    (
        [
            *UNDER_REVIEW,
            "review_overturn",
            "forward",
            "unit_answer",
            "propose_decision",
            "approve_decision",
            "notify",
        ],
        {},
    ),
    # A content correction, with the corrected text in the result.
    (
        [*OBJECTION_PATHS["notified"]],
        {
            "propose_decision": {
                **PROPOSE,
                "outcome": "corrected",
                "corrections": "处罚金额更正为5000元",
            }
        },
    ),
    # Withdrawn after the record was marked disputed, with a reason.
    (["accept", "mark_disputed", "withdraw"], {"withdraw": {"reason": "已与认定单位协商解决"}}),
    # Supplemented, then accepted.
    (["request_supplement", "supplement", "accept"], {}),
]
REPAIR_EXTRA: list[tuple[list[str], dict[str, dict[str, Any]]]] = [
    (["forward", "accept", "withdraw"], {"withdraw": {"reason": "拟补充材料后重新申请"}}),
    (["forward", "request_supplement", "supplement", "accept", "approve"], {}),
]


def _open(w: World, procedure: str, version: int) -> int:
    if procedure == "objection":
        opened = open_objection(w)
    else:
        # Version 1 (Order 58) applies to applications filed before 2026-04-01.
        opened = open_repair(w, filed_on=date(2026, 3, 2) if version == 1 else None)
    assert opened.definition_version == version
    return opened.case_id


def _queued(w: World, case_ids: list[int] | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(notice name, payload) of every queued notice, one per (case, event, notice)."""
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT case_id, name, payload FROM outbox WHERE kind = 'notice' ORDER BY id")
        ).all()
    seen: set[tuple[int, int, str]] = set()
    out = []
    for case_id, name, payload in rows:
        if case_ids is not None and case_id not in case_ids:
            continue
        p = json.loads(payload)
        key = (case_id, p["event_seq"], name)
        if key not in seen:  # one row per channel; the context is the same
            seen.add(key)
            out.append((name, p))
    return out


def _render(payload: dict[str, Any], lang: str) -> notices.Rendered:
    return notices.render(payload["template"], payload["version"], lang, payload["context"])


def _expected(procedure: str, version: int) -> set[tuple[str, str]]:
    """(trigger, notice) pairs of a definition: every notice every trigger emits."""
    spec = builtin().get(procedure, version).spec
    pairs = {("submit", n) for n in spec.intake_notices}
    pairs |= {(t.name, n) for t in spec.triggers for n in t.notices}
    return pairs


def _check_letter(name: str, ctx: dict[str, Any], lang: str, r: notices.Rendered) -> None:
    case_no = ctx["case"]["case_no"]
    assert r.subject and case_no in r.subject
    assert case_no in r.body
    for text in (r.subject, r.body):
        assert "None" not in text and "{{" not in text and "{%" not in text
    assert {t.lower() for t in TAG.findall(r.body)} <= ALLOWED_TAGS, r.body
    assert not TAG.search(r.text)
    assert ctx["notice_no"] in r.body and ctx["issued_on"] in r.body
    office = ctx["office"][lang]
    assert office in r.body
    # The record is named as its subject knows it, not only by the subject's name.
    record = ctx["record"]
    line = {"zh": "所涉信用记录：编号", "en": "The record concerned: no. "}[lang]
    assert f"{line}{record['id']}" in r.text, r.text
    assert record["category"][lang] in r.body and record["decision_date"] in r.body
    fields, data = ctx["fields"], ctx["data"]
    if name in DECISIONS:
        source = data if name == "objection_result" else fields
        assert source["reasons"] in r.body and source["legal_basis"] in r.body
    if name in WITH_REMEDIES:
        assert ("行政复议" if lang == "zh" else "reconsideration") in r.body
        assert "60" in r.body
    if name == "supplement_request":
        items = fields["items"]
        assert items
        lines = r.text.splitlines()
        for item in items:
            assert item in r.body and f"- {item}" in lines
        # At the formal check, missing documents mean a deemed withdrawal; during
        # verification or review, a decision on the material at hand.
        at_intake = "supplement_due" in ctx["deadlines"]
        due = ctx["deadlines"]["supplement_due" if at_intake else "evidence_due"]["due"]
        assert due in r.body
        if at_intake:
            assert ("视为撤回" if lang == "zh" else "deemed withdrawn") in r.body
        else:
            assert ("依据现有材料" if lang == "zh" else "material at hand") in r.body
    if name == "review_result":
        assert fields["reasons"] in r.body
        upheld = {"zh": "维持原处理决定", "en": "upheld"}[lang]
        overturned = {"zh": "撤销原处理决定", "en": "set aside"}[lang]
        assert (upheld if ctx["trigger"] == "review_confirm" else overturned) in r.body
        if ctx["trigger"] == "review_confirm":
            assert ("行政复议" if lang == "zh" else "reconsideration") in r.body
    if name == "reputation_restored":
        assert fields["measures"] in r.body
    if name == "repair_revocation":
        assert ("三年" if lang == "zh" else "three years") in r.body
    if name == "forward_to_unit":
        assert data["grounds"] in r.body and ctx["unit"][lang] in r.body
        title = {
            ("zh", "objection"): "异议核查函",
            ("zh", "repair"): "信用修复申请转办函",
            ("en", "objection"): "Request to verify",
            ("en", "repair"): "Forwarded application for credit repair",
        }[lang, ctx["case"]["procedure"]]
        assert title in r.subject
    if name == "withdrawal_confirmed" and fields.get("reason"):
        assert fields["reason"] in r.body
    if name == "receipt":
        for d in ctx["deadlines"].values():
            assert d["due"] in r.body


# -- 1. every template, every transition that uses it, real contexts -----------------------------


@pytest.mark.parametrize(("procedure", "version"), VERSIONS)
def test_every_notice_renders_for_every_transition(
    world: World, procedure: str, version: int
) -> None:
    paths = OBJECTION_PATHS if procedure == "objection" else REPAIR_PATHS
    extra = OBJECTION_EXTRA if procedure == "objection" else REPAIR_EXTRA
    plans: list[tuple[list[str], dict[str, dict[str, Any]]]] = [
        (steps, {}) for steps in paths.values()
    ]
    plans += extra
    cases = []
    for steps, payloads in plans:
        case_id = _open(world, procedure, version)
        drive(world, case_id, procedure, steps, payloads)
        cases.append(case_id)
    queued = _queued(world, cases)

    covered = {(p["context"]["trigger"], name) for name, p in queued}
    assert covered == _expected(procedure, version)
    # Both review_confirm branches (to restoring and to closed) were rendered.
    if procedure == "objection":
        confirmed = [p for n, p in queued if p["context"]["trigger"] == "review_confirm"]
        assert {p["context"]["data"]["outcome"] for p in confirmed} == {"revoked", "upheld"}

    recipients = {name: p["recipient_role"] for name, p in queued}
    assert recipients["forward_to_unit"] == "determining_unit"
    for name, payload in queued:
        ctx = payload["context"]
        assert payload["template"] == name and payload["version"] == notices.latest(name)
        for lang in notices.LANGS:
            rendered = _render(payload, lang)
            _check_letter(name, ctx, lang, rendered)
            assert notice_pdf(rendered.subject, rendered.body).startswith(b"%PDF")


# -- 2. a missing value is an error, never a blank --------------------------------------------


def _one(w: World, procedure: str, steps: list[str], name: str, **pl: Any) -> dict[str, Any]:
    case_id = _open(w, procedure, 2 if procedure == "repair" else 1)
    drive(w, case_id, procedure, steps, pl or None)
    return next(p for n, p in reversed(_queued(w, [case_id])) if n == name)


@pytest.mark.parametrize(
    ("notice", "path"),
    [
        ("supplement_request", ("deadlines", "supplement_due")),
        ("supplement_request", ("fields", "items")),
        ("supplement_request", ("applicant", "name")),
        ("non_acceptance", ("fields", "legal_basis")),
        ("non_acceptance", ("remedies", "reconsideration_days")),
        ("receipt", ("office",)),
    ],
)
def test_missing_value_fails(world: World, notice: str, path: tuple[str, ...]) -> None:
    steps = {"supplement_request": ["request_supplement"], "non_acceptance": ["reject"]}
    payload = _one(world, "objection", steps.get(notice, []), notice)
    for lang in notices.LANGS:
        _render(payload, lang)  # complete: renders
        broken = copy.deepcopy(payload)
        *parents, leaf = path
        target = broken["context"]
        for key in parents:
            target = target[key]
        del target[leaf]
        with pytest.raises(jinja2.exceptions.UndefinedError):
            _render(broken, lang)


# -- 3. applicants' and staff's text is escaped --------------------------------------------------


def test_reasons_are_escaped(world: World) -> None:
    reasons = "材料不全 <b>& 另见附件"
    payload = _one(
        world,
        "repair",
        ["forward", "reject"],
        "non_acceptance",
        reject={"reasons": reasons, "legal_basis": "《信用修复管理办法》第九条"},
    )
    for lang in notices.LANGS:
        r = _render(payload, lang)
        assert "&lt;b&gt;&amp;" in r.body
        assert "<b>&" not in r.body
        assert reasons in r.text  # the plain text gives it back as written
        assert notice_pdf(r.subject, r.body).startswith(b"%PDF")


# -- 4. the plain-text form --------------------------------------------------------------------


def test_plain_text_keeps_list_items_as_lines(world: World) -> None:
    items = ["营业执照副本", "行政处罚撤销决定书", "法定代表人身份证明"]
    payload = _one(
        world,
        "repair",
        ["forward", "request_supplement"],
        "supplement_request",
        request_supplement={"items": items},
    )
    for lang in notices.LANGS:
        text = _render(payload, lang).text
        assert not TAG.search(text)
        assert "&lt;" not in text and "&amp;" not in text
        lines = text.splitlines()
        for item in items:
            assert f"- {item}" in lines
        # The heading lines stay apart from the body.
        assert lines[0] == payload["context"]["office"][lang]


def test_provisional_due_date_is_marked(world: World) -> None:
    payload = _one(world, "objection", ["request_supplement"], "supplement_request")
    payload["context"]["deadlines"]["supplement_due"]["provisional"] = True
    assert "暂定" in _render(payload, "zh").body
    assert "provisional" in _render(payload, "en").body
    payload["context"]["deadlines"]["supplement_due"]["provisional"] = False
    assert "暂定" not in _render(payload, "zh").body
    assert "provisional" not in _render(payload, "en").body


def test_overturned_review_gives_the_new_verification_deadline(world: World) -> None:
    """An overturned review sends the case back to verification: the letter says by when."""
    case_id = _open(world, "objection", 1)
    drive(world, case_id, "objection", [*UNDER_REVIEW, "review_overturn"])
    queued = _queued(world, [case_id])
    name, payload = queued[-1]
    assert name == "review_result" and payload["context"]["trigger"] == "review_overturn"
    verify = payload["context"]["deadlines"]["verify"]["due"]
    for lang in notices.LANGS:
        assert verify in _render(payload, lang).body
    assert world.engine.case_view(case_id, SYSTEM)["state"] == "verifying"


# -- 5. every notice of every definition has a template --------------------------------------


def test_every_defined_notice_has_a_template() -> None:
    reg = builtin()
    names = {
        n.template for name in reg.names() for proc in reg.versions(name) for n in proc.spec.notices
    }
    assert names
    for name in sorted(names):
        assert 1 in notices.versions(name), name


# -- staff messages (the sweep does not render them yet) -------------------------------------


def _staff_context(step: int, notify: str) -> dict[str, Any]:
    return {
        "notice_no": "YY20260407K3M9QX-T01",
        "issued_on": "2026-04-09",
        "case": {
            "case_no": "YY20260407K3M9QX",
            "procedure": "objection",
            "title": {"zh": "信用信息异议处理", "en": "Objection to a credit record"},
        },
        "state_label": {"zh": "核查中", "en": "Being verified"},
        "timer": {"label": {"zh": "核查期限", "en": "verification"}, "due": "2026-04-14"},
        "step": step,
        "notify": notify,
        "office": {"zh": "市信用办", "en": "City Credit Office"},
    }


@pytest.mark.parametrize(
    ("step", "notify", "zh", "en"),
    [
        (0, "assignee", "承办人", "assignee"),
        (1, "reviewer", "审核人", "reviewer"),
        (2, "head", "负责人", "head"),
    ],
)
def test_staff_messages(step: int, notify: str, zh: str, en: str) -> None:
    ctx = _staff_context(step, notify)
    for lang in notices.LANGS:
        for name in ("staff_reminder", "staff_escalation"):
            r = notices.render(name, notices.latest(name), lang, ctx)
            assert "YY20260407K3M9QX" in r.subject and "2026-04-14" in r.subject
            assert ctx["timer"]["label"][lang] in r.body and "2026-04-14" in r.body
            assert "None" not in r.body and "{{" not in r.body
            assert {t.lower() for t in TAG.findall(r.body)} <= ALLOWED_TAGS
        esc = notices.render("staff_escalation", 1, lang, ctx)
        assert (zh if lang == "zh" else en) in esc.body
        assert (f"第{step + 1}级" if lang == "zh" else f"step {step + 1}") in esc.body
    broken = {k: v for k, v in ctx.items() if k != "timer"}
    with pytest.raises(jinja2.exceptions.UndefinedError):
        notices.render("staff_reminder", 1, "zh", broken)


# -- 5. letters queued before a template's new version still render as they were queued --------


def test_a_notice_queued_under_version_1_renders_from_version_1(world: World) -> None:
    # An outbox row keeps its template version and the values taken then: a row queued before
    # v2 (no record number in its context) is delivered with v1, unchanged.
    payload = _one(world, "objection", ["accept"], "acceptance")
    assert payload["version"] == 2
    old = copy.deepcopy(payload)
    old["version"] = 1
    old["context"]["record"] = {"subject_name": payload["context"]["record"]["subject_name"]}
    for lang in notices.LANGS:
        then = _render(old, lang)
        assert payload["context"]["record"]["subject_name"] in then.body
        assert "所涉信用记录" not in then.body and "record concerned" not in then.body
        assert "所涉信用记录" in _render(payload, "zh").body


# -- 7. identification and complaint: every letter the engine builds, delivered and stored ------

IDENT = IDENTIFICATION_PATHS
# Extra paths beyond the demo's, so that every trigger that emits a notice is taken and every
# variant of a letter is rendered.
IDENTIFICATION_EXTRA: list[list[str]] = [
    # The non_identification conclusions the demo's paths leave out (it has uphold_statement
    # and tolerate).
    [*IDENT["task_group_review"], "not_identify"],
    [*IDENT["awaiting_approval"], "refuse_approval"],
    # Rectification rejected, reported again and accepted.
    [
        *IDENT["rectification_check"],
        "reject_rectification",
        "report_rectification",
        "accept_rectification",
    ],
    # Pressed by hand, before and after the deadline.
    [*IDENT["rectifying"], "urge"],
    [*IDENT["overdue"], "urge"],
    # Decided without a statement: none in time, or waived in writing.
    ["propose", "send_prior_notice", "statement_lapsed", "form_opinion", "approve"],
    ["propose", "send_prior_notice", "waive_statement", "form_opinion", "approve"],
]
COMPLAINT_EXTRA: list[list[str]] = [
    ["register", "accept", "request_extension", "approve_extension", "conclude"],
]
PARTIES = (("government", "某区城市管理局"), ("civil_servant", "王某某"))
# Deadlines the letters name, for a step taken on Tuesday 2026-04-07 (worked out by hand, as in
# tests/states/test_timer_rules.py).
DUE_IN_LETTER: dict[tuple[str, str], str] = {
    ("identification_decision", "rectification_due"): "2026-05-21",
    ("rectification_order", "rectification_due"): "2026-05-21",
    ("complaint_receipt", "register_due"): "2026-04-22",
    ("complaint_acceptance", "conclusion_due"): "2026-06-08",
}
ASCII_WORD = re.compile(r"[A-Za-z0-9_]+")
EN_CODE = re.compile(r"\b(?:[A-Za-z0-9]+_[A-Za-z0-9_]+|None|True|False)\b")


def _stored_codes(text: str, *known: str) -> set[str]:
    """ASCII words in a Chinese letter other than the numbers and codes it is meant to carry
    (the case number, which the notice number starts with, and an access code): a stored
    value (a choice's code, None, True) printed where its words belong."""
    return {w for w in ASCII_WORD.findall(text) if not w.isdigit() and w not in known}


def _body_procedures(w: World) -> dict[str, Procedure]:
    """The identification and complaint definitions as the engine runs them."""
    procs = {p.name: p for p in w.engine.procedures.all() if p.name in BODY_PROCEDURES}
    assert set(procs) == set(BODY_PROCEDURES)
    return procs


def _deliver_all(w: World) -> None:
    delivery = build_delivery(w.engine)
    while True:
        done = delivery.deliver()
        if done.sent + done.failed + done.dead == 0:
            return


def _linked(w: World, case_id: int) -> int:
    with w.engine.db.read() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT other_case_id FROM case_links "
                    "WHERE case_id = :id AND relation = 'opened'"
                ),
                {"id": case_id},
            ).scalar_one()
        )


def _drive_bodies(w: World) -> dict[int, str]:
    """Cases along every demo path and every extra path; returns case id → procedure."""
    cases: dict[int, str] = {}
    ident_paths = [*IDENTIFICATION_PATHS.values(), *IDENTIFICATION_EXTRA]
    for i, steps in enumerate(ident_paths):
        kind, name = PARTIES[i % 2]
        opened = open_identification(w.engine, w.staff, kind, name, f"party{i}@example.com")
        drive(w, opened.case_id, "identification", steps)
        cases[opened.case_id] = "identification"
    complaint_paths = [*COMPLAINT_PATHS.values(), *COMPLAINT_EXTRA]
    for anonymous in (False, True):
        for i, steps in enumerate(complaint_paths):
            opened = open_complaint(w.engine, w.staff, anonymous=anonymous, index=i)
            drive(w, opened.case_id, "complaint", steps)
            cases[opened.case_id] = "complaint"
    # A substantiated complaint referred for identification: the party of the new case is the
    # complaint's subject, a government body named without an identifier in the complaint.
    referring = open_complaint(w.engine, w.staff, index=99)
    refer = {
        **PROCEDURE_PAYLOADS["complaint"]["refer_identification"],
        "subject_identifier": make_uscc("11310000MB" + uuid.uuid4().hex[:7].upper()),
    }
    steps = ["register", "accept", "refer_identification", "conclude"]
    drive(w, referring.case_id, "complaint", steps, {"refer_identification": refer})
    cases[referring.case_id] = "complaint"
    linked = _linked(w, referring.case_id)
    drive(w, linked, "identification", IDENT["rectified"])
    cases[linked] = "identification"
    return cases


def _check_body_letter(ctx: dict[str, Any], name: str, lang: str, subject: str, body: str) -> None:
    case_no = ctx["case"]["case_no"]
    text = notices.html_to_text(body)
    assert case_no in subject and case_no in body
    assert ctx["notice_no"] in body and ctx["issued_on"] in body
    assert ctx["office"][lang] in body
    for t in (subject, body):
        assert "{{" not in t and "{%" not in t
    assert {t.lower() for t in TAG.findall(body)} <= ALLOWED_TAGS, body
    assert not TAG.search(text)
    code = ctx["access_code"]
    if lang == "zh":
        known = (case_no, code) if code else (case_no,)
        assert _stored_codes(f"{subject}\n{text}", *known) == set(), text
    else:
        assert EN_CODE.findall(f"{subject}\n{text}") == [], text
    data, trigger, zh = ctx["data"], ctx["trigger"], lang == "zh"
    lines = text.splitlines()
    person = ctx["applicant"]
    if person["anonymous"]:
        assert ("匿名投诉举报人" if zh else "anonymous complainant") in text
    else:
        assert person["name"] and person["name"] in text
    for (letter, timer), due in DUE_IN_LETTER.items():
        if letter == name:
            assert ctx["deadlines"][timer]["due"] == due
            assert due in text
    if name == "prior_notice":
        assert code and code in text  # the party did not file the case: the letter says how
        assert data["facts"] in text and data["legal_basis"] in text
        assert f"{data['publicity_months']}" in text
        assert ("5个工作日" if zh else "5 working days") in text
        for measure in data["proposed_measures"]:
            assert f"- {measure}" in lines
    else:
        assert code is None
    if name == "identification_decision":
        assert data["facts"] in text and data["opinion"] in text
        for measure in data["proposed_measures"]:
            assert f"- {measure}" in lines
        assert ("行政复议" if zh else "reconsideration") in text and "60" in text
        if data.get("statement"):
            heard = "提出了陈述申辩意见" if zh else "You filed a statement"
        elif data.get("waived_on"):
            heard = "书面放弃陈述申辩" if zh else "waived your statement in writing"
        else:
            heard = "未提出陈述申辩意见" if zh else "filed no statement"
        assert heard in text
    if name in ("rectification_order", "rectification_urge"):
        assert data["rectification_requirements"] in text
    if name == "rectification_urge" and "supervision_due" in ctx["deadlines"]:
        assert ctx["deadlines"]["supervision_due"]["due"] in text
    if name == "non_identification":
        assert data["reasons"] in text
        said = {
            "uphold_statement": ("陈述申辩意见成立", "is upheld"),
            "tolerate": ("容错纠错", "fault tolerance"),
            "not_identify": ("经依法审议", "after due consideration"),
            "refuse_approval": ("经依法审议", "after due consideration"),
        }[trigger]
        assert said[0 if zh else 1] in text
        if trigger == "uphold_statement":
            assert data["statement_answer"] in text
        if trigger == "tolerate":
            assert data["tolerance_conditions"] in text
    if name == "rectification_result":
        assert data["check_opinion"] in text
        if trigger == "accept_rectification":
            assert ("整改验收通过。" if zh else "the rectification is accepted") in text
        else:
            assert ("整改验收不通过" if zh else "is not accepted") in text
            assert ctx["deadlines"]["rectification_due"]["due"] in text
    if name == "complaint_receipt":
        channel = {"zh": "12345政务服务便民热线", "en": "12345 government service hotline"}
        assert channel[lang] in text
    if name == "complaint_non_acceptance":
        assert data["reasons"] in text and data["legal_basis"] in text
        assert ("行政复议" if zh else "reconsideration") in text
    if name == "complaint_reply":
        assert data["reply"] in text
        assert ("属实" if zh else "substantiated") in text
        assert ("30日内请求复查" if zh else "within 30 calendar days") in text
        if data.get("extensions"):
            assert ("延长30日" if zh else "by 30 days") in text
    if name == "reexamination_opinion":
        assert data["reexam_opinion"] in text
        assert ("维持原答复意见" if zh else "the reply stands") in text


def test_every_body_notice_is_stored_for_every_transition(sqlite_world: World) -> None:
    w = sqlite_world
    procs = _body_procedures(w)
    cases = _drive_bodies(w)
    _deliver_all(w)
    with w.engine.db.read() as conn:
        outbox = conn.execute(
            sa.text(
                "SELECT case_id, kind, name, channel, payload, status, last_error FROM outbox "
                "ORDER BY id"
            )
        ).all()
        stored = {
            (r[0], r[1], r[2], r[3], r[4]): (r[5], r[6])
            for r in conn.execute(
                sa.text(
                    "SELECT case_id, event_seq, name, recipient, lang, subject, body FROM notices"
                )
            ).all()
        }
    assert {case_id for case_id, kind, *_ in outbox if kind == "notice"} <= set(cases)

    emitted: set[tuple[str, str, str]] = set()  # (procedure, trigger, notice)
    rendered: set[tuple[str, str, str]] = set()
    failed: list[tuple[str, str, str]] = []
    channels: dict[int, set[str]] = {}
    letters: dict[tuple[int, int, str], dict[str, Any]] = {}
    for case_id, kind, name, channel, payload, status, error in outbox:
        p = json.loads(payload)
        if kind != "notice":
            assert status == "sent", (kind, name, error)  # the platform pushes
            continue
        trigger = p["context"]["trigger"]
        emitted.add((cases[case_id], trigger, name))
        channels.setdefault(case_id, set()).add(channel)
        if status != "sent" or error is not None:
            failed.append((name, trigger, error))
            continue
        assert p["template"] == name and p["version"] == notices.latest(name)
        letters[(case_id, p["event_seq"], name)] = p
    for (case_id, seq, name), p in letters.items():
        ctx = p["context"]
        for lang in notices.LANGS:
            key = (case_id, seq, name, p["recipient_role"], lang)
            assert key in stored, key
            _check_body_letter(ctx, name, lang, *stored[key])
        if name == "prior_notice":
            me = authenticate(w.engine, ctx["case"]["case_no"], ctx["access_code"])
            assert (me.role, me.case_id) == ("applicant", case_id)
        rendered.add((cases[case_id], ctx["trigger"], name))

    # Every notice every trigger emits (and the intake's, as "submit") was queued ...
    expected = {
        (proc.name, trig.name, n)
        for proc in procs.values()
        for trig in proc.spec.triggers
        for n in trig.notices
    }
    expected |= {(p.name, "submit", n) for p in procs.values() for n in p.spec.intake_notices}
    assert emitted == expected
    # ... to an anonymous complainant only in the app: no contact details are kept.
    anonymous = {p["context"]["applicant"]["anonymous"] for p in letters.values()}
    assert anonymous == {True, False}
    for (case_id, _, _), p in letters.items():
        if p["context"]["applicant"]["anonymous"]:
            assert channels[case_id] == {"inapp"}
    # ... and delivered, rendered and stored in both languages.
    assert failed == []
    assert rendered == expected


def test_prior_notice_access_code_lets_the_party_in(sqlite_world: World) -> None:
    """The prior notice carries the code the party follows and answers the case with; the code
    advance does not return is the one in the letter, and it replaces the intake's."""
    w = sqlite_world
    opened = open_identification(w.engine, w.staff, "government", "某区城市管理局")
    drive(w, opened.case_id, "identification", ["propose", "send_prior_notice"])
    with w.engine.db.read() as conn:
        payloads = [
            json.loads(p)
            for p in conn.execute(
                sa.text("SELECT payload FROM outbox WHERE case_id = :id AND name = 'prior_notice'"),
                {"id": opened.case_id},
            ).scalars()
        ]
    assert payloads
    code = payloads[0]["context"]["access_code"]
    assert isinstance(code, str) and len(code) == 10
    assert {p["context"]["access_code"] for p in payloads} == {code}  # one code, every channel
    _deliver_all(w)
    with w.engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT lang, body FROM notices WHERE case_id = :id AND name = 'prior_notice'"),
            {"id": opened.case_id},
        ).all()
    assert {lang for lang, _ in rows} == set(notices.LANGS)
    for _, body in rows:
        assert code in notices.html_to_text(body) and opened.case_no in body

    me = authenticate(w.engine, opened.case_no, code)
    assert (me.role, me.case_id) == ("applicant", opened.case_id)
    if opened.access_code is not None:
        with pytest.raises(NotFound):
            authenticate(w.engine, opened.case_no, opened.access_code)
    # With it the party files the statement the letter invites.
    payload = PROCEDURE_PAYLOADS["identification"]["file_statement"]
    done = w.engine.advance(opened.case_id, "file_statement", me, payload)
    assert done.state == "statement_review"
