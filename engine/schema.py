"""The database schema, as SQLAlchemy Core tables (Alembic migrations are written against it).

Conventions that keep one code path for SQLite and PostgreSQL:
- instants are `UtcDateTime`: TIMESTAMPTZ on PostgreSQL; on SQLite a fixed-width UTC text
  (``YYYY-MM-DDTHH:MM:SS.ffffffZ``) so that text order is time order and indexes work;
- JSON documents are stored as text, written canonically by the engine (the event hash chain
  is computed over the same canonical text);
- nothing is deleted: records change by new versions, cases by appended events.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

SQLITE_TS = "%Y-%m-%dT%H:%M:%S.%fZ"


@lru_cache(maxsize=256)
def ts_to_sqlite(value: datetime) -> str:
    # Cached: a command writes the same "now" into 5-10 columns. Equal instants in different
    # zones hash alike and give the same UTC text, so the cache cannot mix them up.
    if value.tzinfo is None:
        raise ValueError("naive datetime: redress stores only timezone-aware instants")
    # isoformat is C code and several times faster than strftime; same text as SQLITE_TS.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def ts_from_sqlite(value: str) -> datetime:
    # fromisoformat reads the trailing Z (Python 3.11) at a fraction of strptime's cost.
    return datetime.fromisoformat(value)


class UtcDateTime(TypeDecorator[datetime]):
    """An aware instant; refuses naive datetimes so a missing zone never slips in."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(27))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return ts_to_sqlite(value)
        if value.tzinfo is None:
            raise ValueError("naive datetime: redress stores only timezone-aware instants")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return ts_from_sqlite(value)
        assert isinstance(value, datetime)
        return value.astimezone(UTC)


def _partial(where: str) -> dict[str, Any]:
    """A partial index's condition, the same on both dialects."""
    return {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}


def _pk() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _fk(name: str, target: str, nullable: bool = False) -> sa.Column[int]:
    return sa.Column(
        name,
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey(target),
        nullable=nullable,
    )


departments = sa.Table(
    "departments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name_zh", sa.String(200), nullable=False),
    sa.Column("name_en", sa.String(200), nullable=False),
    # credit_office: runs the platform; unit: a determining unit (认定单位).
    sa.Column("kind", sa.String(20), nullable=False, server_default="unit"),
    # Where letters for the department (as a determining unit) go.
    sa.Column("email", sa.String(200), nullable=True),
    # Whose rule sets and local calendar days its cases follow (a city, a province, ...).
    sa.Column("jurisdiction", sa.String(40), nullable=False, server_default="default"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # The department above it (上级部门), where a matter goes at the next level.
    sa.Column("parent_id", sa.String(64), sa.ForeignKey("departments.id"), nullable=True),
)

# Deployed procedure versions (engine/definitions.py). A row is never updated: a version is
# its content, identified by the SHA-256 of the canonical document.
procedure_versions = sa.Table(
    "procedure_versions",
    metadata,
    _pk(),
    sa.Column("name", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("jurisdiction", sa.String(40), nullable=False),
    sa.Column("effective_from", sa.Date(), nullable=False),
    sa.Column("effective_until", sa.Date(), nullable=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    # Canonical JSON (what is hashed and compiled) and the file as the operator wrote it.
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("deployed_by", sa.String(100), nullable=False),
    sa.Column("deployed_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("name", "version", "jurisdiction"),
)

users = sa.Table(
    "users",
    metadata,
    _pk(),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("department_id", sa.String(64), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("email", sa.String(200), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

# Staff bearer tokens: several per user (a laptop, a script), each with an expiry, listed by
# its label and never shown again (only the hash is kept). Revoking or rotating one ends it
# for good; a disabled user's tokens are refused with the user (authenticate joins both).
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    _pk(),
    _fk("user_id", "users.id"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(100), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    # revoked, rotated
    sa.Column("revoked_reason", sa.String(40), nullable=True),
    sa.Column("revoked_by", sa.String(100), nullable=True),
    sa.Index("ix_api_tokens_user_id", "user_id"),
)

credit_records = sa.Table(
    "credit_records",
    metadata,
    _pk(),
    sa.Column("subject_kind", sa.String(20), nullable=False),
    sa.Column("subject_name", sa.String(200), nullable=False),
    sa.Column("subject_identifier", sa.String(18), nullable=False, index=True),
    sa.Column("source_category", sa.String(40), nullable=False),
    sa.Column("severity", sa.String(10), nullable=False),
    sa.Column("determining_unit", sa.String(64), sa.ForeignKey("departments.id"), nullable=False),
    sa.Column("decision_date", sa.Date(), nullable=False),
    sa.Column("published_from", sa.Date(), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("disputed", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("repair_barred_until", sa.Date(), nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

record_versions = sa.Table(
    "record_versions",
    metadata,
    _pk(),
    _fk("record_id", "credit_records.id"),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("disputed", sa.Boolean(), nullable=False),
    sa.Column("content", sa.Text(), nullable=False),
    sa.Column("repair_barred_until", sa.Date(), nullable=True),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    _fk("case_id", "cases.id", nullable=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("record_id", "version"),
)

cases = sa.Table(
    "cases",
    metadata,
    _pk(),
    sa.Column("case_no", sa.String(32), nullable=False, unique=True),
    sa.Column("procedure", sa.String(40), nullable=False),
    sa.Column("definition_version", sa.Integer(), nullable=False),
    # The exact stored definition the case runs under, for life (or until migrated).
    _fk("definition_id", "procedure_versions.id"),
    # The handling department's jurisdiction when the case was filed: its calendar, for life.
    sa.Column("jurisdiction", sa.String(40), nullable=False, server_default="default"),
    sa.Column("state", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    # NULL: a case about a subject without a published record (a complaint, a request).
    _fk("record_id", "credit_records.id", nullable=True),
    sa.Column("department_id", sa.String(64), sa.ForeignKey("departments.id"), nullable=False),
    _fk("assignee_id", "users.id", nullable=True),
    sa.Column("applicant", sa.Text(), nullable=False),
    sa.Column("data", sa.Text(), nullable=False),
    sa.Column("filed_on", sa.Date(), nullable=False),
    sa.Column("opened_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("closed_at", UtcDateTime(), nullable=True),
    sa.Column("event_seq", sa.Integer(), nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.Column("access_code_hash", sa.String(64), nullable=True),
    sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    # One index for the department's lists and the counts by procedure and state: every
    # index on `state` is rewritten by every step (migration 0005).
    sa.Index("ix_cases_department_id_procedure_state", "department_id", "procedure", "state"),
    sa.Index("ix_cases_record_id", "record_id"),
)

case_events = sa.Table(
    "case_events",
    metadata,
    _pk(),
    _fk("case_id", "cases.id"),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("trigger", sa.String(60), nullable=False),
    sa.Column("from_state", sa.String(40), nullable=True),
    sa.Column("to_state", sa.String(40), nullable=False),
    sa.Column("case_version", sa.Integer(), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("actor_role", sa.String(20), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("payload", sa.Text(), nullable=False),
    # What the command did besides moving the state: deadlines, record versions, notices.
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True),
    sa.Column("request_hash", sa.String(64), nullable=True),
    sa.UniqueConstraint("case_id", "seq"),
    # Only events sent with a key are indexed by it (migration 0005).
    sa.Index(
        "uq_case_events_case_id_idempotency_key",
        "case_id",
        "idempotency_key",
        unique=True,
        **_partial("idempotency_key IS NOT NULL"),
    ),
)

timers = sa.Table(
    "timers",
    metadata,
    _pk(),
    _fk("case_id", "cases.id", nullable=True),
    _fk("record_id", "credit_records.id", nullable=True),
    sa.Column("name", sa.String(60), nullable=False),
    # active | paused | stopped | expired
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("period", sa.String(40), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("due_day", sa.Date(), nullable=True),
    sa.Column("due_at", UtcDateTime(), nullable=True),
    sa.Column("provisional", sa.Boolean(), nullable=False, server_default=sa.false()),
    # Working (or calendar) days left when paused.
    sa.Column("remaining", sa.Integer(), nullable=True),
    # The due day is anchor_day + amount (in the period's unit): kept so that a due day in a
    # provisional year can be recomputed exactly when that year's notice is loaded.
    sa.Column("anchor_day", sa.Date(), nullable=True),
    sa.Column("amount", sa.Integer(), nullable=True),
    sa.Column("extended_days", sa.Integer(), nullable=False, server_default="0"),
    # What the sweep does next and when: reminder | due | escalate:N; NULL when nothing is left.
    sa.Column("next_action", sa.String(20), nullable=True),
    sa.Column("next_at", UtcDateTime(), nullable=True),
    sa.Column("stopped_at", UtcDateTime(), nullable=True),
    # (next_at, id): due timers share one instant (local midnight), and the sweep pages through
    # them in (next_at, id) order without re-reading the ties.
    # Partial: a stopped timer (next_at NULL) leaves the index instead of moving in it.
    sa.Index("ix_timers_next", "next_at", "id", **_partial("next_at IS NOT NULL")),
    sa.Index("ix_timers_case_status", "case_id", "status"),
    # A record's own timers (publication ends), stopped when a decision changes the record;
    # a case's timers have no record_id and stay out of it.
    sa.Index("ix_timers_record_status", "record_id", "status", **_partial("record_id IS NOT NULL")),
)

outbox = sa.Table(
    "outbox",
    metadata,
    _pk(),
    _fk("case_id", "cases.id", nullable=True),
    _fk("record_id", "credit_records.id", nullable=True),
    # notice (to the applicant or a unit) | staff (reminders, escalations) | platform_sync
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("recipient", sa.String(200), nullable=False),
    # email | sms | inapp | webhook | log; NULL: routed by kind (platform pushes).
    sa.Column("channel", sa.String(20), nullable=True),
    sa.Column("payload", sa.Text(), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    # pending | sent | dead
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Index("ix_outbox_status_next", "status", "next_attempt_at"),
    sa.Index("ix_outbox_case_id", "case_id"),
)

notices = sa.Table(
    "notices",
    metadata,
    _pk(),
    _fk("case_id", "cases.id"),
    sa.Column("event_seq", sa.Integer(), nullable=False),
    sa.Column("name", sa.String(60), nullable=False),
    sa.Column("lang", sa.String(5), nullable=False),
    # applicant | determining_unit | staff
    sa.Column("recipient", sa.String(40), nullable=False),
    sa.Column("template", sa.String(60), nullable=False),
    sa.Column("template_version", sa.Integer(), nullable=False),
    sa.Column("subject", sa.Text(), nullable=False),
    # The letter as sent: restricted HTML (h1, h2, p, ul, li, b) from the template.
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("case_id", "event_seq", "name", "lang", "recipient"),
)

outbox_attempts = sa.Table(
    "outbox_attempts",
    metadata,
    _pk(),
    _fk("outbox_id", "outbox.id"),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
    # The provider's answer (status line, error) and its message id, as received.
    sa.Column("answer", sa.Text(), nullable=False),
    sa.Column("message_id", sa.String(200), nullable=True),
    sa.Index("ix_outbox_attempts_outbox_id", "outbox_id"),
)

attachments = sa.Table(
    "attachments",
    metadata,
    _pk(),
    _fk("case_id", "cases.id"),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.Integer(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("storage_key", sa.String(255), nullable=False),
    sa.Column("uploaded_by", sa.String(100), nullable=False),
    sa.Column("uploaded_at", UtcDateTime(), nullable=False),
)

# A case that opened another (a complaint its identification), stored both ways.
case_links = sa.Table(
    "case_links",
    metadata,
    _pk(),
    _fk("case_id", "cases.id"),
    _fk("other_case_id", "cases.id"),
    # "opened" (this case opened the other) or "opened_from".
    sa.Column("relation", sa.String(20), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("case_id", "other_case_id"),
)

# Wrong access codes, counted per (case number, client) and per client across every worker
# (engine/applicants.py AccessGuard); rows older than the window are deleted as new ones come.
access_failures = sa.Table(
    "access_failures",
    metadata,
    _pk(),
    sa.Column("case_no", sa.String(40), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Index("ix_access_failures_case_no_client_at", "case_no", "client", "at"),
    sa.Index("ix_access_failures_client_at", "client", "at"),
)

# Who saw what: every view by staff of unmasked personal data (a case page, an attachment, a
# notice PDF, a record, a search by identifier). Append-only: the database refuses UPDATE and
# DELETE on it (triggers, migration 0012), as PIPL asks an office to show who looked.
access_log = sa.Table(
    "access_log",
    metadata,
    _pk(),
    sa.Column("at", UtcDateTime(), nullable=False),
    _fk("user_id", "users.id", nullable=True),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    # case, attachment, notice, record, search
    sa.Column("what", sa.String(20), nullable=False),
    _fk("case_id", "cases.id", nullable=True),
    _fk("record_id", "credit_records.id", nullable=True),
    # The attachment's file name, the notice's template, the identifier searched for.
    sa.Column("detail", sa.String(200), nullable=False),
    # console, api
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("client", sa.String(64), nullable=False),
    sa.Index("ix_access_log_case_id_at", "case_id", "at"),
    sa.Index("ix_access_log_user_id_at", "user_id", "at"),
    sa.Index("ix_access_log_at", "at"),
)

# Console and portal sign-ins. The cookie carries a random id whose hash is kept here, so a
# session ends for good at sign-out, when its user is disabled, or when a new access code is
# issued, in every process at once, whatever the cookie's signature says.
web_sessions = sa.Table(
    "web_sessions",
    metadata,
    _pk(),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    # staff (user_id) or applicant (case_id).
    sa.Column("kind", sa.String(10), nullable=False),
    _fk("user_id", "users.id", nullable=True),
    _fk("case_id", "cases.id", nullable=True),
    # The token a staff member signed in with: revoking it ends the session too.
    _fk("token_id", "api_tokens.id", nullable=True),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("expires_at", UtcDateTime(), nullable=False),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    # signed_out, user_disabled, code_reset, ...
    sa.Column("ended_reason", sa.String(40), nullable=True),
    sa.Index("ix_web_sessions_user_id", "user_id"),
    sa.Index("ix_web_sessions_case_id", "case_id"),
    sa.Index("ix_web_sessions_token_id", "token_id"),
)

calendar_days = sa.Table(
    "calendar_days",
    metadata,
    sa.Column("day", sa.Date(), primary_key=True),
    # official: from a State Council notice (the whole year is then official); local: additions.
    sa.Column("source", sa.String(10), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("loaded_at", UtcDateTime(), nullable=False),
)

# Local days of one jurisdiction, on top of the national calendar and the installation's own
# local days (calendar_days, source 'local'): a deadline of a case in that jurisdiction only.
jurisdiction_days = sa.Table(
    "jurisdiction_days",
    metadata,
    sa.Column("jurisdiction", sa.String(40), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("loaded_at", UtcDateTime(), nullable=False),
)

calendar_years = sa.Table(
    "calendar_years",
    metadata,
    sa.Column("year", sa.Integer(), primary_key=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("loaded_at", UtcDateTime(), nullable=False),
)


def date_param(value: date | None, dialect: str) -> Any:
    if value is None:
        return None
    return value.isoformat() if dialect == "sqlite" else value


def ts_param(value: datetime | None, dialect: str) -> Any:
    if value is None:
        return None
    return ts_to_sqlite(value) if dialect == "sqlite" else value


def to_date(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def to_ts(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return ts_from_sqlite(str(value))
