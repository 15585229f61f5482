"""The SQL of the engine's commands, written once, `:name` placeholders, both dialects.

Kept apart from the logic so the benchmark's "bare floor" can send exactly these statements
straight through the driver and compare.
"""

from __future__ import annotations

from functools import lru_cache

# The case and its record in one read (CASE_RECORD: the record's columns, as RECORD_FOR_UPDATE
# has them after the id; then what the case view adds): a step that changes the record needs
# no second statement.
CASE_FOR_COMMAND = """
SELECT c.id, c.procedure, c.definition_version, c.state, c.version, c.record_id,
       c.department_id, c.assignee_id, c.data, c.event_seq, c.last_hash, c.case_no,
       r.determining_unit, c.applicant, r.subject_name,
       r.version, r.status, r.disputed, r.severity, r.published_from, r.content,
       r.repair_barred_until, r.source_category, r.decision_date,
       c.filed_on, c.opened_at, c.closed_at, r.subject_identifier, c.definition_id,
       c.jurisdiction
FROM cases c JOIN credit_records r ON r.id = c.record_id
WHERE c.id = :id
"""

# A case without a record (record_id NULL) in the same columns, the record's ones NULL. Read
# only when CASE_FOR_COMMAND finds nothing: the usual case keeps its one statement, and its
# record stays lockable (PostgreSQL cannot lock the nullable side of an outer join).
CASE_WITHOUT_RECORD = """
SELECT c.id, c.procedure, c.definition_version, c.state, c.version, c.record_id,
       c.department_id, c.assignee_id, c.data, c.event_seq, c.last_hash, c.case_no,
       NULL, c.applicant, NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       c.filed_on, c.opened_at, c.closed_at, NULL, c.definition_id, c.jurisdiction
FROM cases c
WHERE c.id = :id AND c.record_id IS NULL
"""
CASE_ONLY_LOCK = " FOR UPDATE"

# PostgreSQL: a command locks the case and its record as it reads them. The record's lock
# serialises effects on one record from different cases; SQLite's BEGIN IMMEDIATE already
# serialises every writer.
CASE_LOCK = " FOR UPDATE OF c, r"

EVENT_BY_KEY = """
SELECT request_hash, to_state, case_version, seq, detail FROM case_events
WHERE case_id = :case_id AND idempotency_key = :key
"""

CASE_UPDATE = """
UPDATE cases SET state = :state, version = version + 1, data = :data, event_seq = :seq,
       last_hash = :hash, updated_at = :now, closed_at = :closed_at
WHERE id = :id AND version = :version
"""

# A new case; a case number already taken inserts nothing (and returns no id).
CASE_INSERT = """
INSERT INTO cases (case_no, procedure, definition_version, definition_id, jurisdiction, state,
       version, record_id,
       department_id, assignee_id, applicant, data, filed_on, opened_at, updated_at, closed_at,
       event_seq, last_hash, access_code_hash, idempotency_key, request_hash)
VALUES (:no, :p, :v, :def, :j, :s, 1, :r, :d, NULL, :a, :data, :f, :at, :at, NULL, 0, :h, :code,
       :k, :rh)
ON CONFLICT (case_no) DO NOTHING
RETURNING id
"""

CASE_VERSION = "SELECT version FROM cases WHERE id = :id"

EVENT_INSERT = """
INSERT INTO case_events (case_id, seq, trigger, from_state, to_state, case_version, actor,
       actor_role, at, payload, detail, prev_hash, hash, idempotency_key, request_hash)
VALUES (:case_id, :seq, :trigger, :from_state, :to_state, :case_version, :actor,
       :actor_role, :at, :payload, :detail, :prev_hash, :hash, :idempotency_key, :request_hash)
"""

CASE_RECORD = slice(15, 24)
CASE_FILED_ON, CASE_OPENED_AT, CASE_CLOSED_AT, CASE_SUBJECT_IDENTIFIER = 24, 25, 26, 27
CASE_DEFINITION_ID, CASE_JURISDICTION = 28, 29

# The record's columns after the id (as CASE_FOR_COMMAND's CASE_RECORD), then two of its own.
RECORD_STATE = slice(1, 10)
RECORD_UNIT, RECORD_SUBJECT = 10, 11

RECORD_FOR_UPDATE = """
SELECT id, version, status, disputed, severity, published_from, content, repair_barred_until,
       source_category, decision_date, determining_unit, subject_name
FROM credit_records WHERE id = :id
"""

RECORD_UPDATE = """
UPDATE credit_records SET status = :status, disputed = :disputed, content = :content,
       repair_barred_until = :repair_barred_until, version = version + 1, updated_at = :now
WHERE id = :id AND version = :version
"""

RECORD_VERSION_INSERT = """
INSERT INTO record_versions (record_id, version, status, disputed, content,
       repair_barred_until, reason, actor, case_id, at)
VALUES (:record_id, :version, :status, :disputed, :content, :repair_barred_until, :reason,
       :actor, :case_id, :at)
"""

TIMERS_LIVE = """
SELECT id, name, status, period, due_day, remaining, extended_days, anchor_day, amount FROM timers
WHERE case_id = :case_id AND status IN ('active', 'paused', 'waiting')
ORDER BY id
"""

# Stop a case's live timers in one statement (the engine adds a name filter and RETURNING).
TIMERS_STOP_LIVE = """
UPDATE timers SET status = 'stopped', next_action = NULL, next_at = NULL, stopped_at = :now
WHERE case_id = :case_id AND status IN ('active', 'paused', 'waiting')
"""


@lru_cache(maxsize=64)
def timers_stop_live(names: int | None) -> str:
    """TIMERS_STOP_LIVE for all live timers (None) or those named :n0 ... :n{names-1},
    returning (id, name) of each timer stopped."""
    where = "" if names is None else f" AND name IN ({', '.join(f':n{i}' for i in range(names))})"
    return TIMERS_STOP_LIVE.rstrip() + where + "\nRETURNING id, name\n"


TIMER_STOP = """
UPDATE timers SET status = 'stopped', next_action = NULL, next_at = NULL, stopped_at = :now
WHERE id = :id
"""

TIMER_PAUSE = """
UPDATE timers SET status = 'paused', remaining = :remaining, next_action = NULL, next_at = NULL,
       due_at = NULL
WHERE id = :id
"""

TIMER_SET_DUE = """
UPDATE timers SET status = 'active', due_day = :due_day, due_at = :due_at,
       anchor_day = :anchor_day, amount = :amount,
       provisional = :provisional, remaining = NULL, extended_days = :extended_days,
       next_action = :next_action, next_at = :next_at
WHERE id = :id
"""

TIMER_INSERT = """
INSERT INTO timers (case_id, record_id, name, status, period, started_at, due_day, due_at,
       provisional, remaining, extended_days, anchor_day, amount, next_action, next_at)
VALUES (:case_id, :record_id, :name, 'active', :period, :started_at, :due_day, :due_at,
       :provisional, NULL, 0, :anchor_day, :amount, :next_action, :next_at)
"""

# A timer counted from a notice's delivery: no due day until the notice is delivered; until
# then the sweep tells the assignee, now and then, that it is still undelivered.
TIMER_INSERT_WAITING = """
INSERT INTO timers (case_id, record_id, name, status, period, started_at, due_day, due_at,
       provisional, remaining, extended_days, anchor_day, amount, next_action, next_at)
VALUES (:case_id, :record_id, :name, 'waiting', :period, :started_at, NULL, NULL,
       FALSE, NULL, 0, NULL, :amount, 'undelivered', :next_at)
"""

# An extension approved while the clock is paused adds to the days left.
TIMER_EXTEND_PAUSED = """
UPDATE timers SET remaining = :remaining, extended_days = :extended_days WHERE id = :id
"""

# The case's running deadlines, as a letter names them.
TIMERS_RUNNING = """
SELECT name, due_day, provisional FROM timers
WHERE case_id = :case_id AND status = 'active' AND due_day IS NOT NULL
ORDER BY id
"""

# The case's timers waiting for a notice's delivery.
TIMERS_WAITING = """
SELECT id, name FROM timers WHERE case_id = :case_id AND status = 'waiting' ORDER BY id
"""

# Sync timers of a record's cases met by a push the platform has received.
SYNC_TIMERS_MET = """
SELECT id, case_id, name FROM timers
WHERE record_id = :record_id AND case_id IS NOT NULL AND status = 'active'
  AND started_at <= :queued_at
ORDER BY case_id, id
"""

OUTBOX_INSERT = """
INSERT INTO outbox (case_id, record_id, kind, name, recipient, channel, payload,
       idempotency_key, status, attempts, next_attempt_at, created_at)
VALUES (:case_id, :record_id, :kind, :name, :recipient, :channel, :payload, :idempotency_key,
       'pending', 0, :now, :now)
"""

CASE_CHAIN_UPDATE = "UPDATE cases SET event_seq = :seq, last_hash = :hash WHERE id = :id"

DUE_TIMERS = """
SELECT id FROM timers WHERE next_at <= :now ORDER BY next_at, id LIMIT :limit
"""

TIMER_FOR_FIRING = """
SELECT id, case_id, record_id, name, status, period, due_day, due_at, next_action, next_at
FROM timers WHERE id = :id
"""

TIMER_NEXT = "UPDATE timers SET next_action = :next_action, next_at = :next_at WHERE id = :id"

TIMER_EXPIRE = """
UPDATE timers SET status = 'expired', next_action = NULL, next_at = NULL, stopped_at = :now
WHERE id = :id
"""

RECORD_TIMERS_STOP = """
UPDATE timers SET status = 'stopped', next_action = NULL, next_at = NULL, stopped_at = :now
WHERE record_id = :id AND status = 'active' AND case_id IS NULL
"""

STAFF_EMAIL_OF_USER = """
SELECT email FROM users WHERE id = :id AND active AND email IS NOT NULL
"""

STAFF_EMAILS_BY_ROLE = """
SELECT email FROM users WHERE department_id = :d AND role = :r AND active AND email IS NOT NULL
ORDER BY id
"""

CASE_LINK_INSERT = """
INSERT INTO case_links (case_id, other_case_id, relation, created_at)
VALUES (:a, :b, :rel, :at)
"""

CASE_LINKS = """
SELECT l.relation, c.id, c.case_no, c.procedure, c.state, c.definition_id, c.department_id,
       r.determining_unit
FROM case_links l JOIN cases c ON c.id = l.other_case_id
LEFT JOIN credit_records r ON r.id = c.record_id
WHERE l.case_id = :id ORDER BY l.id
"""
