"""The shipped rule sets against DOMAIN.md's table of deadlines in force (procedure 1), by hand.

Each row is what DOMAIN.md says for that jurisdiction; a figure it does not give keeps the default
and its basis says "(default)". Changing a file's figure without changing this table fails here.
"""

from __future__ import annotations

import pytest

from engine.definitions import builtin

DEFAULT = {
    "formal_check": "2 working days",
    "mark_due": "1 working day",
    "verify": "5 working days",
    "forward_due": "2 working days",
    "unit_answer": "5 working days",
    "notify_due": "1 working day",
    "withdraw_due": "3 working days",
    "review_window": "15 calendar days",
    "review_decision": "5 working days",
}

# jurisdiction: (timer → (period, must the basis cite this jurisdiction's article?))
TABLE: dict[str, dict[str, tuple[str, str | None]]] = {
    # Shanghai 2017 Art. 36: mark 1; centre 5; or forward in 2 and provider 5. Art. 37: withdraw.
    "shanghai": {
        "mark_due": ("1 working day", "第36条"),
        "verify": ("5 working days", "第36条"),
        "forward_due": ("2 working days", "第36条"),
        "unit_answer": ("5 working days", "第36条"),
        "withdraw_due": ("3 working days", "第37条"),
    },
    # Shandong 2020 Art. 39: mark –; decide 3, 7 if other units must check (3 paused + 4).
    "shandong": {
        "mark_due": ("1 working day", None),
        "verify": ("3 working days", "第39条"),
        "unit_answer": ("4 working days", "第39条"),
        "withdraw_due": ("3 working days", "第40条"),
    },
    # Henan 2019 Art. 41: mark yes (no period); decide 3 / 7; checked unit 3; testing paused.
    "henan": {
        "mark_due": ("1 working day", None),
        "verify": ("3 working days", "第41条"),
        "unit_answer": ("3 working days", "第41条"),
    },
    # Zhejiang 2017 Arts. 30–31: mark yes; decide 5, extendable to 20 in total; review 5.
    "zhejiang": {
        "mark_due": ("1 working day", None),
        "verify": ("5 working days", "第30–31条"),
        "review_decision": ("5 working days", "第31条"),
    },
    # Shenzhen Arts. 48–51: mark on acceptance; platform 1; provider 2 (+3).
    "shenzhen": {
        "mark_due": ("0 working days", "第48–51条"),
        "verify": ("1 working day", "第48–51条"),
        "forward_due": ("1 working day", "第48–51条"),
        "unit_answer": ("5 working days", "第48–51条"),
    },
}
NAMES = {
    "shanghai": "上海",
    "shandong": "山东",
    "henan": "河南",
    "zhejiang": "浙江",
    "shenzhen": "深圳",
}


@pytest.mark.parametrize("jurisdiction", sorted(TABLE))
def test_rule_set_deadlines_match_domain(jurisdiction: str) -> None:
    proc = builtin().get("objection", 1, jurisdiction)
    assert proc.spec.jurisdiction == jurisdiction
    expected = {name: (period, None) for name, period in DEFAULT.items()} | TABLE[jurisdiction]
    for name, (period, article) in expected.items():
        tm = proc.timers[name]
        assert tm.period == period, (jurisdiction, name)
        if name in TABLE[jurisdiction] and article is not None:
            assert NAMES[jurisdiction] in tm.basis and article in tm.basis, (name, tm.basis)
            assert not tm.basis.startswith("(default)"), name
        elif not any(law in tm.basis for law in ("行政处罚法",)):
            # Not set by this jurisdiction's rules: the default, and the file says so.
            assert tm.basis.startswith("(default)"), (jurisdiction, name, tm.basis)
        for other, zh in NAMES.items():
            if other != jurisdiction and zh in tm.basis:
                assert tm.basis.startswith("(default)"), (jurisdiction, name, tm.basis)


def test_zhejiang_keeps_the_extension_to_twenty_and_henan_pauses_for_testing() -> None:
    zj = builtin().get("objection", 1, "zhejiang").timers["verify"]
    assert zj.extension is not None and zj.extension.max_total == "20 working days"
    henan = builtin().get("objection", 1, "henan")
    assert "verify" in henan.spec.state("testing").pauses
    assert "第41条" in henan.timers["testing_due"].basis
