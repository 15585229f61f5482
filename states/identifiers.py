"""Validation, normalisation and masking of the identifiers that name a credit subject.

A dishonesty record names its subject by one of two national identifiers:

* 统一社会信用代码 (unified social credit code, USCC, GB 32100-2015) for enterprises,
  public institutions and government bodies;
* 居民身份证号码 (resident identity number, GB 11643-1999) for natural persons,
  including civil servants named in a record.

Objections and repair applications are typed in by hand, often copied from scans, so this
module accepts the usual harmless variations (surrounding whitespace, lower-case ``x``,
full-width characters) and rejects everything else with an :class:`IdentifierError` that says,
in Chinese and English, what is wrong and at which position.

The module is pure: no I/O and no clock reading (callers pass ``today`` explicitly).
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Literal, assert_never

__all__ = [
    "RESIDENT_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_WEIGHTS",
    "IdentifierError",
    "IdentifierErrorCode",
    "SubjectKind",
    "make_resident_id",
    "make_uscc",
    "mask",
    "normalise",
    "resident_id_check_char",
    "uscc_check_char",
    "validate_resident_id",
    "validate_subject_identifier",
    "validate_uscc",
]

SubjectKind = Literal["enterprise", "government", "civil_servant", "person"]
IdentifierErrorCode = Literal["length", "charset", "check_char", "birth_date", "region", "empty"]

IDENTIFIER_LENGTH = 18
BODY_LENGTH = 17

_DIGITS = "0123456789"

# GB 32100-2015 alphabet: digits plus capital letters without I, O, Z, S, V (too easily
# confused with 1, 0, 2, 5, U). A character's value is its index, 0..30.
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_FORBIDDEN_LETTERS = "IOZSV"
# W_i = 3^(i-1) mod 31. Every weight is non-zero modulo the prime 31, so changing any single
# character of the first 17 always changes the check character.
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
# Positions 3-8 (1-based) hold the GB/T 2260 administrative division code: digits only.
_USCC_DIVISION_POSITIONS = range(3, 9)

# ISO 7064 MOD 11-2: W_i = 2^(18-i) mod 11 for 1-based position i. Non-zero modulo the
# prime 11, so any single-digit substitution changes the check character.
RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_CHECK_CHARS = "0123456789X"

_USCC_ZH = "统一社会信用代码"
_USCC_EN = "unified social credit code"
_RESIDENT_ZH = "居民身份证号码"
_RESIDENT_EN = "resident identity number"


class IdentifierError(ValueError):
    """An identifier was rejected; ``str(error)`` is the English message.

    ``position`` is the 1-based position of the offending character in the normalised
    identifier (or the first position of the offending field), ``None`` when the problem is
    not tied to one position (empty input, wrong length).
    """

    code: IdentifierErrorCode
    message_zh: str
    message_en: str
    position: int | None

    def __init__(
        self,
        code: IdentifierErrorCode,
        message_zh: str,
        message_en: str,
        position: int | None = None,
    ) -> None:
        super().__init__(message_en)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.position = position

    def __str__(self) -> str:
        return self.message_en

    def __repr__(self) -> str:
        return (
            f"IdentifierError(code={self.code!r}, position={self.position!r}, "
            f"message_en={self.message_en!r})"
        )


# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------


def normalise(raw: str) -> str:
    """Return ``raw`` in canonical form without validating it.

    NFKC folds full-width characters (``９``, ``Ｘ``, ideographic space) to ASCII; surrounding
    whitespace is stripped; ASCII letters are upper-cased. Only ASCII is upper-cased so that
    positions reported in errors stay those of the characters the user typed.
    """
    folded = unicodedata.normalize("NFKC", raw).strip()
    return "".join(c.upper() if "a" <= c <= "z" else c for c in folded)


# --------------------------------------------------------------------------------------------
# Shared checks
# --------------------------------------------------------------------------------------------


def _require_non_empty(value: str, name_zh: str, name_en: str) -> None:
    if not value:
        raise IdentifierError(
            "empty",
            f"{name_zh}不能为空",
            f"A {name_en} is required; got an empty value",
        )


def _reject_internal_whitespace(value: str, name_zh: str, name_en: str) -> None:
    # Reported before the length check: "character 5 is a space" is more useful than
    # "got 19 characters" when someone pasted a code split into groups.
    for index, char in enumerate(value):
        if char.isspace():
            what_zh, what_en = ("空格", "a space") if char == " " else ("空白字符", "whitespace")
            raise IdentifierError(
                "charset",
                f"第{index + 1}位是{what_zh}，{name_zh}中间不能有空格",
                f"character {index + 1} is {what_en}; a {name_en} must not contain spaces",
                index + 1,
            )


def _require_length(
    value: str, expected: int, name_zh: str, name_en: str, hint_zh: str = "", hint_en: str = ""
) -> None:
    if len(value) != expected:
        raise IdentifierError(
            "length",
            f"{name_zh}应为{expected}位，实际为{len(value)}位{hint_zh}",
            f"A {name_en} has {expected} characters; got {len(value)}{hint_en}",
        )


def _require_body_length(value: str, name_zh: str, name_en: str) -> None:
    if len(value) != BODY_LENGTH:
        raise IdentifierError(
            "length",
            f"{name_zh}前17位（不含校验码）应为17个字符，实际为{len(value)}个",
            f"the first 17 characters of a {name_en} (without the check character) are "
            f"needed; got {len(value)}",
        )


# --------------------------------------------------------------------------------------------
# Unified social credit code
# --------------------------------------------------------------------------------------------


def _check_uscc_charset(value: str) -> None:
    """Check every character of a USCC (or its 17-character body) against GB 32100."""
    for index, char in enumerate(value):
        position = index + 1
        if position in _USCC_DIVISION_POSITIONS:
            if char not in _DIGITS:
                raise IdentifierError(
                    "charset",
                    f"第{position}位字符“{char}”不符合要求：{_USCC_ZH}第3–8位是行政区划码，"
                    "只能是数字",
                    f"character {position} ({char!r}) must be a digit: characters 3-8 of a "
                    f"{_USCC_EN} are the administrative division code",
                    position,
                )
        elif char not in _USCC_VALUE:
            raise IdentifierError(
                "charset",
                f"第{position}位字符“{char}”不是{_USCC_ZH}允许的字符"
                "（只使用数字和除I、O、Z、S、V以外的大写字母）",
                f"character {position} ({char!r}) is not allowed in a {_USCC_EN} "
                "(only digits and capital letters are used; I, O, Z, S, V are never used)",
                position,
            )


def _uscc_check_char_unchecked(body: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(body, USCC_WEIGHTS, strict=True))
    # C18 = 31 - (sum mod 31), where 31 wraps to 0; i.e. (-sum) mod 31.
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_check_char(first17: str) -> str:
    """Return the check character (position 18) for the first 17 characters of a USCC."""
    body = normalise(first17)
    _require_non_empty(body, _USCC_ZH, _USCC_EN)
    _reject_internal_whitespace(body, _USCC_ZH, _USCC_EN)
    _require_body_length(body, _USCC_ZH, _USCC_EN)
    _check_uscc_charset(body)
    return _uscc_check_char_unchecked(body)


def make_uscc(first17: str) -> str:
    """Append the check character to a 17-character USCC body (for demo data and tests)."""
    body = normalise(first17)
    return body + uscc_check_char(body)


def validate_uscc(raw: str) -> str:
    """Return the normalised unified social credit code or raise :class:`IdentifierError`.

    Checked: length, alphabet, digits in the administrative division field (3-8) and the
    check character (18). The organisation code's own GB 11714 check character (17) and the
    meaning of the registration-authority and type codes (1-2) are deliberately not checked.
    """
    code = normalise(raw)
    _require_non_empty(code, _USCC_ZH, _USCC_EN)
    _reject_internal_whitespace(code, _USCC_ZH, _USCC_EN)
    _require_length(code, IDENTIFIER_LENGTH, _USCC_ZH, _USCC_EN)
    _check_uscc_charset(code)
    expected = _uscc_check_char_unchecked(code[:BODY_LENGTH])
    _require_check_char(code, expected)
    return code


def _require_check_char(code: str, expected: str) -> None:
    actual = code[BODY_LENGTH]
    if actual != expected:
        # Saying what it should be is not a secret (anyone can compute it) and helps the
        # clerk see a single mistyped character.
        raise IdentifierError(
            "check_char",
            f"第18位校验码应为“{expected}”，实际为“{actual}”，号码可能有抄写错误",
            f"check character (position 18) should be {expected!r}, got {actual!r}; "
            "the number may contain a typo",
            IDENTIFIER_LENGTH,
        )


# --------------------------------------------------------------------------------------------
# Resident identity number
# --------------------------------------------------------------------------------------------


def _check_resident_body_charset(body: str) -> None:
    for index, char in enumerate(body[:BODY_LENGTH]):
        if char not in _DIGITS:
            raise IdentifierError(
                "charset",
                f"第{index + 1}位字符“{char}”不符合要求：{_RESIDENT_ZH}前17位只能是数字",
                f"character {index + 1} ({char!r}) is not allowed: the first 17 characters "
                f"of a {_RESIDENT_EN} are digits",
                index + 1,
            )


def _check_resident_region(body: str) -> None:
    # Conservative on purpose: the list of province codes changes (e.g. 9x for permanent
    # residence permits of foreigners), so only reject what can never be valid.
    region = body[:2]
    if region[0] == "0":
        raise IdentifierError(
            "region",
            f"第1–2位地区码“{region}”无效：省级行政区划码不以0开头",
            f"characters 1-2 ({region!r}) are not a valid province code: "
            "province codes never start with 0",
            1,
        )


def _check_resident_birth_date(body: str, today: date | None) -> None:
    text = body[6:14]
    try:
        born = date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise IdentifierError(
            "birth_date",
            f"第7–14位出生日期“{text}”不是有效日期（应为年月日YYYYMMDD）",
            f"characters 7-14 ({text!r}) are not a valid date of birth (YYYYMMDD)",
            7,
        ) from None
    if today is not None and born > today:
        raise IdentifierError(
            "birth_date",
            f"第7–14位出生日期{born.isoformat()}晚于今天（{today.isoformat()}）",
            f"characters 7-14: date of birth {born.isoformat()} is after today "
            f"({today.isoformat()})",
            7,
        )


def _resident_check_char_unchecked(body: str) -> str:
    total = sum(int(c) * w for c, w in zip(body, RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK_CHARS[(12 - total % 11) % 11]


def resident_id_check_char(first17: str) -> str:
    """Return the check character (``0``-``9`` or ``X``) for 17 leading digits."""
    body = normalise(first17)
    _require_non_empty(body, _RESIDENT_ZH, _RESIDENT_EN)
    _reject_internal_whitespace(body, _RESIDENT_ZH, _RESIDENT_EN)
    _require_body_length(body, _RESIDENT_ZH, _RESIDENT_EN)
    _check_resident_body_charset(body)
    return _resident_check_char_unchecked(body)


def make_resident_id(first17: str) -> str:
    """Append the check character to 17 leading digits (for demo data and tests).

    The region and birth-date fields are checked too, so the result always passes
    :func:`validate_resident_id` when no ``today`` is given.
    """
    body = normalise(first17)
    check = resident_id_check_char(body)
    _check_resident_region(body)
    _check_resident_birth_date(body, None)
    return body + check


def validate_resident_id(raw: str, today: date | None = None) -> str:
    """Return the normalised resident identity number or raise :class:`IdentifierError`.

    Checked: length, digits (17) plus a digit or ``X``, a province code not starting with 0,
    a real date of birth in positions 7-14 (not after ``today`` when given) and the
    ISO 7064 MOD 11-2 check character.
    """
    number = normalise(raw)
    _require_non_empty(number, _RESIDENT_ZH, _RESIDENT_EN)
    _reject_internal_whitespace(number, _RESIDENT_ZH, _RESIDENT_EN)
    if len(number) == 15:
        # Pre-1999 numbers still turn up on old court documents.
        hint_zh, hint_en = (
            "（15位旧号码请换用18位号码）",
            " (use the 18-character number, not the old 15-digit one)",
        )
    else:
        hint_zh, hint_en = "", ""
    _require_length(number, IDENTIFIER_LENGTH, _RESIDENT_ZH, _RESIDENT_EN, hint_zh, hint_en)
    _check_resident_body_charset(number)
    if number[BODY_LENGTH] not in _RESIDENT_CHECK_CHARS:
        raise IdentifierError(
            "charset",
            f"第18位字符“{number[BODY_LENGTH]}”不符合要求：校验码只能是数字或X",
            f"character 18 ({number[BODY_LENGTH]!r}) is not allowed: the check character "
            "is a digit or X",
            IDENTIFIER_LENGTH,
        )
    # Field errors first: a mistyped date also breaks the check character, and "invalid date"
    # points at the mistake more precisely.
    _check_resident_region(number)
    _check_resident_birth_date(number, today)
    _require_check_char(number, _resident_check_char_unchecked(number[:BODY_LENGTH]))
    return number


# --------------------------------------------------------------------------------------------
# Subject identifiers
# --------------------------------------------------------------------------------------------


def validate_subject_identifier(kind: SubjectKind, raw: str, today: date | None = None) -> str:
    """Validate the identifier of a credit subject of the given kind.

    Enterprises and government bodies are named by their USCC; civil servants and other
    natural persons by their resident identity number.
    """
    match kind:
        case "enterprise" | "government":
            return validate_uscc(raw)
        case "civil_servant" | "person":
            return validate_resident_id(raw, today)
        case _:
            assert_never(kind)


def mask(identifier: str, kind: SubjectKind | None = None) -> str:
    """Mask an identifier for display to people other than its subject; length is kept.

    * USCC (``enterprise``/``government``): keep the first 4 and last 4 characters,
      e.g. ``9135**********0Y43``.
    * Resident identity number (``civil_servant``/``person``): keep only the first 2
      (province) and the last 1 (check character), e.g. ``11***************X``. This hides
      the birth date (7-14), the county (3-6) and the sequence number, whose last digit (17)
      would reveal the person's sex.

    Without ``kind`` the resident rule is used whenever the value could be a resident
    identity number (17 digits then a digit or ``X``): an all-digit USCC is then masked more
    than needed, never less. Anything that is not 18 characters long is masked completely.
    The input is normalised first but not validated.
    """
    value = normalise(identifier)
    if len(value) != IDENTIFIER_LENGTH:
        return "*" * len(value)
    if kind is None:
        looks_resident = all(c in _DIGITS for c in value[:BODY_LENGTH]) and (
            value[BODY_LENGTH] in _RESIDENT_CHECK_CHARS
        )
        as_resident = looks_resident
    else:
        as_resident = kind in ("civil_servant", "person")
    keep_head, keep_tail = (2, 1) if as_resident else (4, 4)
    hidden = IDENTIFIER_LENGTH - keep_head - keep_tail
    return value[:keep_head] + "*" * hidden + value[IDENTIFIER_LENGTH - keep_tail :]
