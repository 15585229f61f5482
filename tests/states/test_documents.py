"""Procedure files as an operator writes them: each kind of mistake is caught, located (line,
column, path inside the document) and explained in zh-CN and English, all at once."""

from __future__ import annotations

import dataclasses
import json

import pytest

from engine.definitions import BUILTIN_DIR, catalog
from states.document import canonical, check, digest
from states.spec import Catalog, Problem, procedure_json_schema

OBJECTION = (BUILTIN_DIR / "objection" / "default-v1.yaml").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return catalog()


def edit(text: str, old: str, new: str) -> tuple[str, int]:
    """Replace one unique piece of text; return the new text and the line the edit is on."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    at = text.index(old)
    return text.replace(old, new), text[:at].count("\n") + 1


def one(problems: list[Problem], fragment: str) -> Problem:
    found = [p for p in problems if fragment in p.en]
    assert len(found) == 1, [f"{p.where}: {p.en}" for p in problems]
    p = found[0]
    assert p.zh and p.zh != p.en  # both languages, every problem
    assert p.line is not None and p.column is not None
    return p


def test_the_builtin_files_are_valid(cat: Catalog) -> None:
    for path in sorted(BUILTIN_DIR.glob("*/*.yaml")):
        checked = check(path.read_text(encoding="utf-8"), cat, str(path))
        assert checked.ok, [f"{p.where}: {p.en}" for p in checked.problems]


# (what, old text, new text, fragment of the message, path, line offset from the edit)
CASES = [
    (
        "unknown state",
        "  sources: [awaiting_supplement]\n  dest: deemed_withdrawn\n",
        "  sources: [awaiting_supplement]\n  dest: deemd_withdrawn\n",
        "unknown state 'deemd_withdrawn'",
        ".dest",
        1,
    ),
    (
        "unknown guard",
        "  guards: [first_supplement]\n",
        "  guards: [first_suplement]\n",
        "unknown guard 'first_suplement'",
        ".guards[0]",
        0,
    ),
    (
        "unknown effect",
        "  optional: [comment]\n  effect: mark_disputed\n",
        "  optional: [comment]\n  effect: mark_disputd\n",
        "unknown effect 'mark_disputd'",
        ".effect",
        1,
    ),
    (
        "unknown template",
        "  template: receipt\n",
        "  template: reciept\n",
        "unknown notice template 'reciept'",
        ".template",
        0,
    ),
    (
        "unparseable period",
        "  period: 1 working day\n  basis: 上海市社会信用条例（2017）第36条：1个工作日内标注\n",
        "  period: one workday\n  basis: 上海市社会信用条例（2017）第36条：1个工作日内标注\n",
        "period 'one workday' does not parse",
        ".period",
        0,
    ),
    (
        "expiry trigger not allowed in the timer's state",
        "  expiry_trigger: deem_withdrawn\n",
        "  expiry_trigger: evidence_lapsed\n",
        "'evidence_lapsed' is not allowed in state 'awaiting_supplement'",
        ".expiry_trigger",
        0,
    ),
    (
        "duplicate names",
        "- name: testing_due\n",
        "- name: supplement_due\n",
        "'supplement_due' is defined more than once",
        ".name",
        0,
    ),
    (
        "duplicate key",
        "  label: {zh: 补正期限, en: supplement deadline}\n  period: 15 calendar days\n",
        "  label: {zh: 补正期限, en: supplement deadline}\n  period: 15 calendar days\n"
        "  period: 10 calendar days\n",
        "key 'period' appears twice",
        ".period",
        2,
    ),
    (
        "required field with no definition",
        "  required: [items]\n  optional: [comment]\n  guards: [first_supplement]\n",
        "  required: [items, missing_list]\n  optional: [comment]\n  guards: [first_supplement]\n",
        "field 'missing_list' has no definition",
        ".required[1]",
        0,
    ),
    (
        "terminal state with exits",
        "- name: verifying\n",
        "- name: verifying\n  terminal: true\n",
        "terminal state 'verifying' has exits",
        ".terminal",
        1,
    ),
    (
        "non-terminal state without exit",
        "- name: closed\n  terminal: true\n",
        "- name: closed\n  terminal: false\n",
        "state 'closed' is not terminal but has no exit",
        ".name",
        0,
    ),
    (
        "schema: a misspelled key",
        "  reminder_before: 2 working days\n- name: mark_due\n",
        "  remind_before: 2 working days\n- name: mark_due\n",
        "Extra inputs are not permitted",
        ".remind_before",
        0,
    ),
]


@pytest.mark.parametrize(
    ("what", "old", "new", "fragment", "path", "offset"), CASES, ids=[c[0] for c in CASES]
)
def test_each_mistake_is_located(
    cat: Catalog, what: str, old: str, new: str, fragment: str, path: str, offset: int
) -> None:
    text, line = edit(OBJECTION, old, new)
    checked = check(text, cat, "objection.yaml")
    assert not checked.ok and checked.spec is None
    p = one(checked.problems, fragment)
    assert p.where.endswith(path), p.where
    assert p.line == line + offset, (p.line, line, p.where)


def test_unknown_role_is_one_the_installation_did_not_declare(cat: Catalog) -> None:
    text, line = edit(
        OBJECTION,
        "  sources: [awaiting_supplement]\n  dest: deemed_withdrawn\n  roles: [system]\n",
        "  sources: [awaiting_supplement]\n  dest: deemed_withdrawn\n"
        "  roles: [system, inspector]\n",
    )
    p = one(check(text, cat).problems, "unknown role 'inspector'")
    assert p.line == line + 2 and p.where.endswith(".roles[1]")
    declared = dataclasses.replace(cat, roles=(*cat.roles, "inspector"))
    assert check(text, declared).ok


def test_unreachable_state(cat: Catalog) -> None:
    text, line = edit(
        OBJECTION,
        "- name: closed\n",
        "- name: limbo\n  terminal: true\n  label: {zh: 悬置, en: limbo}\n"
        "  summary: {zh: 悬置, en: limbo}\n- name: closed\n",
    )
    p = one(check(text, cat).problems, "state 'limbo' is unreachable from 'submitted'")
    assert p.line == line and p.where.startswith("states[")


def test_a_template_missing_in_one_language(cat: Catalog) -> None:
    assert cat.templates is not None
    only_zh = dataclasses.replace(cat, templates={**cat.templates, "receipt": frozenset({"zh"})})
    p = one(check(OBJECTION, only_zh).problems, "notice template 'receipt' has no en version")
    assert p.where.endswith(".template") and "缺少 en" in p.zh


def test_yaml_that_does_not_parse_says_where() -> None:
    text, line = edit(
        OBJECTION,
        "  label: {zh: 形式审查期限, en: formal check}\n  period: 2 working days\n",
        "  label: {zh: 形式审查期限, en: formal check}\n  period: [2 working days\n",
    )
    checked = check(text, catalog(), "x.yaml")
    assert len(checked.problems) == 1
    p = checked.problems[0]
    assert "not valid YAML" in p.en and "YAML 格式错误" in p.zh
    assert p.line is not None and line <= p.line <= line + 3


def test_every_problem_at_once(cat: Catalog) -> None:
    text, _ = edit(
        OBJECTION,
        "  optional: [comment]\n  effect: mark_disputed\n",
        "  optional: [comment]\n  effect: mark_disputd\n",
    )
    text, _ = edit(text, "  guards: [first_supplement]\n", "  guards: [first_suplement]\n")
    text, _ = edit(text, "  template: receipt\n", "  template: reciept\n")
    problems = check(text, cat).problems
    assert len(problems) == 3
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)  # file order


def test_canonical_form_ignores_layout_and_comments() -> None:
    import yaml

    data = yaml.safe_load(OBJECTION)
    reflowed = json.dumps(data, ensure_ascii=False, indent=1)  # JSON is YAML too
    assert digest(yaml.safe_load(reflowed)) == digest(data)
    assert digest(yaml.safe_load("# a comment\n" + OBJECTION)) == digest(data)
    changed = OBJECTION.replace("period: 1 working day\n", "period: 2 working days\n", 1)
    assert digest(yaml.safe_load(changed)) != digest(data)
    assert canonical(data).startswith('{"case_prefix":"YY","effective_from":"2020-01-01"')


def test_json_schema_validates_a_file_while_one_types() -> None:
    import jsonschema
    import yaml

    schema = procedure_json_schema()
    jsonschema.validate(yaml.safe_load(OBJECTION), schema)
    bad = yaml.safe_load(OBJECTION)
    bad["timers"][0]["remind_before"] = "1 working day"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
