"""What differs between SQLite and PostgreSQL, in one place.

SQLite (embedded) has one writer at a time: BEGIN IMMEDIATE serialises every writer, so row
locks are neither needed nor supported, and the API groups commands on its event loop.
PostgreSQL (production) runs writers in parallel: a command locks the rows it changes, and
sweepers and outbox workers skip rows another one holds. Code asks this object, never the
dialect's name.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine import sql


@dataclass(frozen=True)
class Dialect:
    name: str
    # Appended to CASE_FOR_COMMAND: the case and its record, locked as they are read.
    case_lock: str
    # Appended to a one-table SELECT that locks its row.
    row_lock: str
    # Appended to a lock: a row someone else holds is passed over, not waited for.
    skip_locked: str
    # One writer per database: writers queue in-process; the API groups its commands.
    one_writer: bool
    # Reads are in-process (no network): cheaper on the event loop than in a thread.
    local_reads: bool
    # Run first in a write transaction to serialise it with others on the same key (None:
    # every writer is serialised already).
    key_lock: str | None = None

    def lock_case(self, skip: bool = False) -> str:
        return self.case_lock + (self.skip_locked if skip and self.case_lock else "")

    def lock_row(self, skip: bool = False) -> str:
        return self.row_lock + (self.skip_locked if skip and self.row_lock else "")


SQLITE = Dialect("sqlite", "", "", "", one_writer=True, local_reads=True)
POSTGRESQL = Dialect(
    "postgresql",
    sql.CASE_LOCK,
    " FOR UPDATE",
    " SKIP LOCKED",
    one_writer=False,
    local_reads=False,
    key_lock="SELECT pg_advisory_xact_lock(hashtext(:key))",
)


def for_name(name: str) -> Dialect:
    return SQLITE if name == "sqlite" else POSTGRESQL
