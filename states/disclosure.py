"""Who sees personal data whole: one rule per field, applied by every read (API, pages, CLI).

Pure: it decides from the caller and the case's parties, never reads anything.

- The applicant's identifier: whole for admin, the clock, the applicant and the handling
  department; for the determining unit too when it is the identifier of its own record's
  subject (which it holds already). Masked for everyone else.
- The applicant's email and phone: whole for admin, the clock, the applicant and the handling
  department; masked for everyone else, the determining unit included.
- A record subject's identifier: whole for admin, the clock, the credit office (it publishes
  it; the credit_office role in a unit's department is not the credit office), the record's
  determining unit and the handling department of a case about it. Masked for everyone else.
- Outbox addresses (mail, phone) are contact data: whole for the case's own department.

A value is masked or whole the same way wherever it shows on one page: the determining unit
sees an applicant who is the record's subject with the identifier it sees in the record block.
The public (the portal) sees only published records, identifiers masked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from states.identifiers import mask

CONTACT_FIELDS = ("email", "phone")


class Caller(Protocol):
    """What the rule needs of an actor (engine.service.Actor)."""

    @property
    def role(self) -> str: ...

    @property
    def department_id(self) -> str | None: ...

    @property
    def case_id(self) -> int | None: ...

    @property
    def is_office(self) -> bool: ...


def is_global(actor: Caller) -> bool:
    return actor.role in ("admin", "system")


def sees_case(
    actor: Caller, *, case_id: int, handling: str, unit: str | None, remit: bool = False
) -> bool:
    """Who may see a case at all: everyone for the global roles, the applicant their own case,
    staff of the handling department or of the unit that made the finding. The SQL form of
    the same rule, for lists, is `engine.queries.visible_cases`; a test holds the two together."""
    if is_global(actor):
        return True
    if actor.role == "applicant":
        return actor.case_id == case_id
    if remit:  # the role acts on every case of the procedure (a city-wide task group)
        return True
    return actor.department_id is not None and actor.department_id in (handling, unit)


def sees_applicant(actor: Caller, *, case_id: int, department_id: str) -> bool:
    """The applicant's identifier and contact details, whole."""
    if is_global(actor):
        return True
    if actor.role == "applicant":
        return actor.case_id == case_id
    return actor.department_id == department_id


def sees_subject(
    actor: Caller, *, determining_unit: str | None, handling: str | None = None
) -> bool:
    """A record subject's identifier, whole."""
    return (
        is_global(actor)
        or actor.is_office
        or actor.department_id == determining_unit
        or (handling is not None and actor.department_id == handling)
    )


def mask_email(email: str) -> str:
    """`l***@example.com`: the domain stays (which office or firm), the person does not."""
    local, at, domain = email.partition("@")
    if not at:
        return "*" * len(email)
    return (local[:1] + "***" if local else "***") + "@" + domain


def mask_phone(phone: str) -> str:
    """`138****5678`: the first 3 and last 4 digits, as Chinese mobile numbers are shown."""
    digits = [c for c in phone if c.isdigit()]
    if len(digits) < 8:
        return "*" * len(phone)
    return "".join(digits[:3]) + "****" + "".join(digits[-4:])


def applicant_for(
    actor: Caller,
    applicant: Mapping[str, Any],
    *,
    case_id: int,
    department_id: str,
    determining_unit: str | None,
    subject_identifier: str | None,
) -> dict[str, Any]:
    """The applicant block as this caller may see it (a copy)."""
    out = dict(applicant)
    if sees_applicant(actor, case_id=case_id, department_id=department_id):
        return out
    ident = str(out.get("identifier") or "")
    known = (
        subject_identifier is not None
        and ident == subject_identifier
        and sees_subject(actor, determining_unit=determining_unit)
    )
    if ident and not known:
        out["identifier"] = mask(ident)
    if out.get("email"):
        out["email"] = mask_email(str(out["email"]))
    if out.get("phone"):
        out["phone"] = mask_phone(str(out["phone"]))
    return out


def recipient_for(actor: Caller, recipient: str | None, *, whole: bool) -> str | None:
    """An outbox address (mail or phone) as this caller may see it."""
    if recipient is None or whole or is_global(actor):
        return recipient
    return mask_email(recipient) if "@" in recipient else mask_phone(recipient)
