"""Tests for states.identifiers: USCC and resident identity number validation and masking."""

from __future__ import annotations

from datetime import date
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from states.identifiers import (
    RESIDENT_WEIGHTS,
    USCC_ALPHABET,
    USCC_WEIGHTS,
    IdentifierError,
    SubjectKind,
    make_resident_id,
    make_uscc,
    mask,
    normalise,
    resident_id_check_char,
    uscc_check_char,
    validate_resident_id,
    validate_subject_identifier,
    validate_uscc,
)

# Real, published examples whose check characters this implementation confirms.
REAL_USCC = "91350100M000100Y43"  # commonly cited example code
REAL_RESIDENT_IDS = (
    "11010519491231002X",  # example in GB 11643-1999
    "440524188001010014",  # example in GB 11643-1999
)

GENERATED_USCC = make_uscc("12100000400012345")
GENERATED_RESIDENT_ID = make_resident_id("32010619850315123")
TODAY = date(2025, 6, 1)


def _raises(func: object, *args: object) -> IdentifierError:
    assert callable(func)
    with pytest.raises(IdentifierError) as info:
        func(*args)
    return info.value


# --------------------------------------------------------------------------------------------
# Check-character arithmetic
# --------------------------------------------------------------------------------------------


def test_weights_are_powers_used_by_the_standards() -> None:
    # GB 32100: W_i = 3^(i-1) mod 31; GB 11643 (ISO 7064 MOD 11-2): W_i = 2^(18-i) mod 11.
    assert tuple(pow(3, i, 31) for i in range(17)) == USCC_WEIGHTS
    assert tuple(pow(2, 17 - i, 11) for i in range(17)) == RESIDENT_WEIGHTS


def test_single_substitution_always_changes_the_check_value() -> None:
    # The claim behind the property tests below: a substitution at position i changes the
    # weighted sum by d * W_i with 0 < |d| < modulus; the moduli are prime and no weight is
    # 0 mod the modulus, so the sum (and hence the check character) always changes.
    for weight in USCC_WEIGHTS:
        assert all((d * weight) % 31 != 0 for d in range(1, 31))
    for weight in RESIDENT_WEIGHTS:
        assert all((d * weight) % 11 != 0 for d in range(1, 10))


def test_real_uscc_is_valid() -> None:
    assert uscc_check_char(REAL_USCC[:17]) == "3"
    assert validate_uscc(REAL_USCC) == REAL_USCC


@pytest.mark.parametrize("number", REAL_RESIDENT_IDS)
def test_real_resident_ids_are_valid(number: str) -> None:
    assert resident_id_check_char(number[:17]) == number[17]
    assert validate_resident_id(number, TODAY) == number


def test_check_character_x_and_zero() -> None:
    assert resident_id_check_char("11010519491231002") == "X"
    # A body whose weighted sum is 0 mod 31 wraps 31 to "0".
    assert uscc_check_char("00000000000000000") == "0"
    assert make_uscc("00000000000000000") == "000000000000000000"


def test_make_returns_valid_codes() -> None:
    assert validate_uscc(GENERATED_USCC) == GENERATED_USCC
    assert validate_resident_id(GENERATED_RESIDENT_ID, TODAY) == GENERATED_RESIDENT_ID


def test_make_normalises_its_input() -> None:
    assert make_uscc("91350100m000100y4") == REAL_USCC
    assert make_resident_id(" １１０１０５１９４９１２３１００２ ") == REAL_RESIDENT_IDS[0]


def test_make_uscc_rejects_bad_body() -> None:
    error = _raises(make_uscc, "91350100M000100I4")
    assert (error.code, error.position) == ("charset", 16)
    error = _raises(make_uscc, REAL_USCC)
    assert error.code == "length"
    assert "18" in error.message_en and "18" in error.message_zh


def test_make_resident_id_rejects_bad_body() -> None:
    assert _raises(make_resident_id, "1101051949123100A").code == "charset"
    assert _raises(make_resident_id, "1101051949123100").code == "length"
    assert _raises(make_resident_id, "11010519491301002").code == "birth_date"
    assert _raises(make_resident_id, "01010519491231002").code == "region"


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


def test_normalise() -> None:
    assert normalise("  91350100m000100y43\t\n") == REAL_USCC
    assert normalise("９１３５０１００Ｍ０００１００Ｙ４３") == REAL_USCC
    assert normalise("\u300011010519491231002ｘ\u3000") == REAL_RESIDENT_IDS[0]
    assert normalise("") == ""


def test_validators_accept_normalisable_input() -> None:
    assert validate_uscc(" 91350100m000100y43 ") == REAL_USCC
    assert validate_uscc("９１３５０１００Ｍ０００１００Ｙ４３") == REAL_USCC
    assert validate_resident_id("11010519491231002x") == REAL_RESIDENT_IDS[0]
    assert validate_resident_id("１１０１０５１９４９１２３１００２Ｘ") == REAL_RESIDENT_IDS[0]
    assert validate_resident_id("\t440524188001010014  ") == REAL_RESIDENT_IDS[1]


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["", "   ", "\u3000"])
def test_empty(raw: str) -> None:
    for func in (validate_uscc, validate_resident_id):
        error = _raises(func, raw)
        assert error.code == "empty"
        assert error.position is None
        assert "不能为空" in error.message_zh
        assert "empty" in error.message_en
        assert str(error) == error.message_en


def test_error_is_a_value_error() -> None:
    error = _raises(validate_uscc, "X")
    assert isinstance(error, ValueError)
    assert str(error) == error.message_en


def test_uscc_length() -> None:
    error = _raises(validate_uscc, REAL_USCC[:17])
    assert error.code == "length"
    assert error.position is None
    assert error.message_zh == "统一社会信用代码应为18位，实际为17位"
    assert error.message_en == "A unified social credit code has 18 characters; got 17"
    assert str(error) == error.message_en


def test_resident_id_length_with_old_number_hint() -> None:
    error = _raises(validate_resident_id, "110105491231002")
    assert error.code == "length"
    assert "实际为15位" in error.message_zh and "15位旧号码" in error.message_zh
    assert "got 15" in error.message_en and "15-digit" in error.message_en
    error = _raises(validate_resident_id, REAL_RESIDENT_IDS[0] + "1")
    assert "实际为19位" in error.message_zh and "旧号码" not in error.message_zh
    assert "got 19" in error.message_en


def test_internal_space_is_an_error() -> None:
    error = _raises(validate_uscc, "9135 0100M000100Y43")
    assert (error.code, error.position) == ("charset", 5)
    assert "第5位是空格" in error.message_zh
    assert "character 5 is a space" in error.message_en
    error = _raises(validate_resident_id, "110105\u300019491231002X")
    assert (error.code, error.position) == ("charset", 7)
    error = _raises(validate_resident_id, "110105\t19491231002X")
    assert (error.code, error.position) == ("charset", 7)
    assert "whitespace" in error.message_en


@pytest.mark.parametrize("letter", list("IOZSV"))
def test_uscc_forbidden_letters(letter: str) -> None:
    raw = "9" + letter + REAL_USCC[2:]
    error = _raises(validate_uscc, raw)
    assert (error.code, error.position) == ("charset", 2)
    assert f"第2位字符“{letter}”不是统一社会信用代码允许的字符" in error.message_zh
    assert f"character 2 ('{letter}') is not allowed in a unified social credit code" in (
        error.message_en
    )
    assert "I, O, Z, S, V are never used" in error.message_en


def test_uscc_lower_case_forbidden_letter_is_reported_upper_case() -> None:
    error = _raises(validate_uscc, "91350100M000100i43")
    assert (error.code, error.position) == ("charset", 16)
    assert "“I”" in error.message_zh


def test_uscc_punctuation() -> None:
    error = _raises(validate_uscc, "91350100-000100Y43")
    assert (error.code, error.position) == ("charset", 9)
    assert "“-”" in error.message_zh
    assert "('-')" in error.message_en


def test_uscc_division_code_must_be_digits() -> None:
    error = _raises(validate_uscc, "91A50100M000100Y43")
    assert (error.code, error.position) == ("charset", 3)
    assert "第3位字符“A”" in error.message_zh and "行政区划码" in error.message_zh
    assert "character 3 ('A') must be a digit" in error.message_en


def test_uscc_check_char() -> None:
    error = _raises(validate_uscc, "91350100M000100Y44")
    assert (error.code, error.position) == ("check_char", 18)
    assert "校验码应为“3”，实际为“4”" in error.message_zh
    assert "should be '3', got '4'" in error.message_en


def test_uscc_typo_in_body_is_caught_by_check_char() -> None:
    error = _raises(validate_uscc, "91350100M000101Y43")
    assert error.code == "check_char"
    assert "实际为“3”" in error.message_zh


def test_resident_id_charset() -> None:
    error = _raises(validate_resident_id, "1101051949123100AX")
    assert (error.code, error.position) == ("charset", 17)
    assert "第17位字符“A”" in error.message_zh and "前17位只能是数字" in error.message_zh
    assert "character 17 ('A')" in error.message_en
    error = _raises(validate_resident_id, "11010519491231002Y")
    assert (error.code, error.position) == ("charset", 18)
    assert "第18位字符“Y”" in error.message_zh and "数字或X" in error.message_zh
    assert "character 18 ('Y')" in error.message_en


def test_resident_id_region() -> None:
    error = _raises(validate_resident_id, make_resident_id_unchecked("00010519491231002"))
    assert (error.code, error.position) == ("region", 1)
    assert "“00”" in error.message_zh
    assert "'00'" in error.message_en


@pytest.mark.parametrize("birth", ["19490229", "19491301", "19490100", "00000101"])
def test_resident_id_invalid_birth_date(birth: str) -> None:
    number = make_resident_id_unchecked("110105" + birth + "002")
    error = _raises(validate_resident_id, number)
    assert (error.code, error.position) == ("birth_date", 7)
    assert f"第7–14位出生日期“{birth}”不是有效日期" in error.message_zh
    assert f"characters 7-14 ('{birth}') are not a valid date of birth" in error.message_en


def test_resident_id_leap_day_is_valid() -> None:
    number = make_resident_id("11010520000229001")
    assert validate_resident_id(number, TODAY) == number


def test_resident_id_birth_date_after_today() -> None:
    number = make_resident_id("11010520250602001")
    assert validate_resident_id(number) == number  # no clock is read without `today`
    assert validate_resident_id(number, date(2025, 6, 2)) == number
    error = _raises(validate_resident_id, number, TODAY)
    assert (error.code, error.position) == ("birth_date", 7)
    assert "2025-06-02" in error.message_zh and "2025-06-01" in error.message_zh
    assert "2025-06-02 is after today (2025-06-01)" in error.message_en


def test_resident_id_check_char() -> None:
    error = _raises(validate_resident_id, "110105194912310021")
    assert (error.code, error.position) == ("check_char", 18)
    assert "校验码应为“X”，实际为“1”" in error.message_zh
    assert "should be 'X', got '1'" in error.message_en


def make_resident_id_unchecked(first17: str) -> str:
    """Build a number with a correct check character but possibly invalid fields."""
    return first17 + resident_id_check_char(first17)


# --------------------------------------------------------------------------------------------
# Subject identifiers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        ("enterprise", REAL_USCC, REAL_RESIDENT_IDS[0]),
        ("government", GENERATED_USCC, REAL_RESIDENT_IDS[1]),
        ("civil_servant", REAL_RESIDENT_IDS[0], REAL_USCC),
        ("person", GENERATED_RESIDENT_ID, GENERATED_USCC),
    ],
)
def test_validate_subject_identifier(kind: SubjectKind, good: str, bad: str) -> None:
    assert validate_subject_identifier(kind, good.lower(), TODAY) == good
    with pytest.raises(IdentifierError):
        validate_subject_identifier(kind, bad, TODAY)


def test_every_kind_is_covered() -> None:
    assert set(get_args(SubjectKind)) == {"enterprise", "government", "civil_servant", "person"}


def test_validate_subject_identifier_passes_today() -> None:
    number = make_resident_id("11010520250602001")
    error = _raises(validate_subject_identifier, "person", number, TODAY)
    assert error.code == "birth_date"
    # Messages name the identifier the kind requires.
    error = _raises(validate_subject_identifier, "government", "")
    assert "统一社会信用代码" in error.message_zh
    error = _raises(validate_subject_identifier, "civil_servant", "")
    assert "居民身份证号码" in error.message_zh


# --------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------


def test_mask_uscc() -> None:
    assert mask(REAL_USCC) == "9135**********0Y43"
    assert mask(REAL_USCC, "enterprise") == "9135**********0Y43"
    assert mask(" 91350100m000100y43 ", "government") == "9135**********0Y43"


def test_mask_resident_id_hides_birth_date_and_sex() -> None:
    number = REAL_RESIDENT_IDS[0]
    assert mask(number) == "11***************X"
    assert mask(number, "person") == "11***************X"
    assert mask(number.lower(), "civil_servant") == "11***************X"
    masked = mask(REAL_RESIDENT_IDS[1])
    assert masked == "44***************4"
    assert "18800101" not in masked


def test_mask_all_digit_uscc_without_kind_errs_on_privacy() -> None:
    # An all-digit USCC could be a resident number; without a kind it gets the stricter mask.
    code = make_uscc("11100000000013000")
    assert code == "111000000000130000"
    assert mask(code) == "11***************0"
    assert mask(code, "government") == "1110**********0000"


@pytest.mark.parametrize("raw", ["", "123", "9135 0100M000100Y43", REAL_USCC + "1"])
def test_mask_wrong_length_is_fully_masked(raw: str) -> None:
    masked = mask(raw)
    assert set(masked) <= {"*"}
    assert len(masked) == len(normalise(raw))


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_USCC_ANY = st.sampled_from(USCC_ALPHABET)
_DIGIT = st.sampled_from("0123456789")

uscc_bodies = st.builds(
    lambda head, division, org: "".join(head) + "".join(division) + "".join(org),
    st.lists(_USCC_ANY, min_size=2, max_size=2),
    st.lists(_DIGIT, min_size=6, max_size=6),
    st.lists(_USCC_ANY, min_size=9, max_size=9),
)

resident_bodies = st.builds(
    lambda first, rest, born, seq: first + "".join(rest) + born.strftime("%Y%m%d") + "".join(seq),
    st.sampled_from("123456789"),
    st.lists(_DIGIT, min_size=5, max_size=5),
    st.dates(min_value=date(1900, 1, 1), max_value=TODAY),
    st.lists(_DIGIT, min_size=3, max_size=3),
)


def _allowed_uscc_chars(position: int) -> str:
    return "0123456789" if 3 <= position <= 8 else USCC_ALPHABET


def _allowed_resident_chars(position: int) -> str:
    return "0123456789X" if position == 18 else "0123456789"


@given(uscc_bodies)
def test_property_make_then_validate_uscc(body: str) -> None:
    code = make_uscc(body)
    assert validate_uscc(code) == code
    assert validate_uscc(code.lower()) == code
    assert validate_subject_identifier("enterprise", code) == code


@given(resident_bodies)
def test_property_make_then_validate_resident_id(body: str) -> None:
    number = make_resident_id(body)
    assert validate_resident_id(number, TODAY) == number
    assert validate_resident_id(number.lower(), TODAY) == number
    assert validate_subject_identifier("person", number, TODAY) == number


@given(uscc_bodies, st.integers(min_value=1, max_value=18), st.data())
def test_property_single_substitution_breaks_uscc(
    body: str, position: int, data: st.DataObject
) -> None:
    code = make_uscc(body)
    original = code[position - 1]
    replacement = data.draw(
        st.sampled_from([c for c in _allowed_uscc_chars(position) if c != original])
    )
    changed = code[: position - 1] + replacement + code[position:]
    error = _raises(validate_uscc, changed)
    # Every character is still allowed, so only the check character can catch it.
    assert error.code == "check_char"


@given(resident_bodies, st.integers(min_value=1, max_value=18), st.data())
def test_property_single_substitution_breaks_resident_id(
    body: str, position: int, data: st.DataObject
) -> None:
    number = make_resident_id(body)
    original = number[position - 1]
    replacement = data.draw(
        st.sampled_from([c for c in _allowed_resident_chars(position) if c != original])
    )
    changed = number[: position - 1] + replacement + number[position:]
    error = _raises(validate_resident_id, changed, TODAY)
    # The region or date check may fire first; otherwise the check character catches it.
    assert error.code in {"check_char", "region", "birth_date"}


@given(resident_bodies)
def test_property_mask_never_shows_birth_date(body: str) -> None:
    number = make_resident_id(body)
    masked = mask(number)
    assert len(masked) == 18
    assert masked[6:14] == "********"
    assert masked[16] == "*"  # the sex digit
