"""The official notices: every template renders, in zh and en, for every transition that emits it.

The contexts are real: cases are driven along every path of every procedure version, and the
letters are rendered from what the commands queued in the outbox.
"""

from __future__ import annotations

import copy
import json
import re
from datetime import date
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from conftest import World
from helpers import OBJECTION_PATHS, PAYLOADS, REPAIR_PATHS, drive, open_objection, open_repair

from engine import notices
from engine.definitions import builtin
from engine.pdf import notice_pdf
from engine.service import SYSTEM

VERSIONS = [("objection", 1), ("repair", 1), ("repair", 2)]
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
    plans = [(steps, {}) for steps in paths.values()] + extra
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
