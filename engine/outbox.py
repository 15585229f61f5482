"""Delivering the outbox: every message sent, retried with backoff, or parked as a dead letter.

A message is claimed in a short transaction (its `next_attempt_at` pushed out by a lease, so
other deliverers pass it by), sent outside any transaction, and the attempt recorded in a
second one. Pushes to the credit platform keep their order per record: a message waits while
an earlier one for the same record is still pending.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from engine import notices as letters
from engine import schema as t
from engine import sql
from engine.channels import Channel, Message, Sent
from engine.service import Engine
from states.errors import Conflict, NotFound

PENDING = """
SELECT o.id FROM outbox o
WHERE o.status = 'pending' AND o.next_attempt_at <= :now
  AND NOT (o.kind = 'platform_sync' AND EXISTS (
      SELECT 1 FROM outbox p WHERE p.kind = 'platform_sync' AND p.record_id = o.record_id
        AND p.status != 'sent' AND p.id < o.id))
ORDER BY o.next_attempt_at, o.id
LIMIT :limit
"""

CLAIM = """
SELECT id, kind, name, recipient, payload, idempotency_key, attempts, case_id, record_id,
       status, next_attempt_at, channel
FROM outbox WHERE id = :id
"""

QUEUED_AT = "SELECT created_at FROM outbox WHERE id = :id"

LEASE = "UPDATE outbox SET next_attempt_at = :until WHERE id = :id"

ATTEMPT = """
INSERT INTO outbox_attempts (outbox_id, at, channel, ok, answer, message_id)
VALUES (:id, :at, :channel, :ok, :answer, :message_id)
"""

SENT = """
UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = :now, last_error = NULL
WHERE id = :id
"""

FAILED = """
UPDATE outbox SET status = :status, attempts = attempts + 1, next_attempt_at = :next,
       last_error = :error
WHERE id = :id
"""


NOTICE_ROWS = """
SELECT id, lang, subject, body FROM notices
WHERE case_id = :c AND event_seq = :s AND name = :n AND recipient = :r
"""

# A notice's channels (in-app, mail, SMS) are separate messages, which two deliverers may take
# at the same moment: the first to commit stores the letter; the other stores nothing and reads
# that one (the same text, rendered from the same payload) instead of failing the send.
NOTICE_INSERT = """
INSERT INTO notices (case_id, event_seq, name, lang, recipient, template, template_version,
       subject, body, created_at)
VALUES (:c, :s, :n, :l, :r, :t, :v, :subj, :body, :now)
ON CONFLICT (case_id, event_seq, name, lang, recipient) DO NOTHING
"""


@dataclass
class DeliveryResult:
    sent: int = 0
    failed: int = 0
    dead: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 8
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)

    def delay(self, attempts: int) -> timedelta:
        """Exponential backoff: 30 s, 1 min, 2 min, ... capped."""
        delay: timedelta = self.base_delay * (2 ** max(attempts - 1, 0))
        return min(delay, self.max_delay)


class Delivery:
    def __init__(
        self, engine: Engine, route: Callable[[Message], Channel], policy: Policy | None = None
    ) -> None:
        self.engine = engine
        self.db = engine.db
        self.route = route
        self.policy = policy or Policy()
        self._skip = engine.db.strategy.lock_row(skip=True)

    def pending(self, now: datetime, limit: int) -> list[int]:
        with self.db.tx(readonly=True) as tx:
            return [
                int(r[0]) for r in tx.all(PENDING, {"now": self.engine.sql_ts(now), "limit": limit})
            ]

    def claim(self, message_id: int, now: datetime) -> Message | None:
        eng = self.engine
        with self.db.tx() as tx:
            row = tx.one(CLAIM + self._skip, {"id": message_id})
            if row is None or row[9] != "pending":
                return None
            due = t.to_ts(row[10])
            if due is None or due > now:
                return None  # claimed by another deliverer meanwhile
            tx.execute(LEASE, {"id": message_id, "until": eng.sql_ts(now + self.policy.lease)})
        return Message(
            int(row[0]),
            row[1],
            row[2],
            row[3],
            json.loads(row[4]),
            row[5],
            int(row[6]),
            row[7],
            row[8],
            row[11],
        )

    def record(self, message: Message, channel: str, sent: Sent, now: datetime) -> str:
        eng = self.engine
        with self.db.tx() as tx:
            tx.execute(
                ATTEMPT,
                {
                    "id": message.id,
                    "at": eng.sql_ts(now),
                    "channel": channel,
                    "ok": sent.ok,
                    "answer": sent.answer[:2000],
                    "message_id": sent.message_id,
                },
            )
            if sent.ok:
                tx.execute(SENT, {"id": message.id, "now": eng.sql_ts(now)})
                queued = tx.scalar(
                    "SELECT created_at FROM outbox WHERE id = :id", {"id": message.id}
                )
                eng.on_delivered(
                    tx,
                    kind=message.kind,
                    name=message.name,
                    channel=channel,
                    case_id=message.case_id,
                    record_id=message.record_id,
                    queued_at=t.to_ts(queued),
                    now=now,
                )
                return "sent"
            attempts = message.attempts + 1
            dead = attempts >= self.policy.max_attempts
            tx.execute(
                FAILED,
                {
                    "id": message.id,
                    "status": "dead" if dead else "pending",
                    "next": eng.sql_ts(now + self.policy.delay(attempts)),
                    "error": sent.answer[:2000],
                },
            )
            return "dead" if dead else "failed"

    def deliver(self, now: datetime | None = None, limit: int = 200) -> DeliveryResult:
        """Send what is due; each message claimed, sent, and recorded on its own."""
        now = now or self.engine.now()
        result = DeliveryResult()
        for mid in self.pending(now, limit):
            message = self.claim(mid, now)
            if message is None:
                continue
            channel = self.route(message)
            try:
                message = self.materialise(message)
                sent = channel.send(message)
            except Exception as exc:
                sent = Sent(False, f"{type(exc).__name__}: {exc}")
            outcome = self.record(message, channel.name, sent, self.engine.now())
            if outcome == "sent":
                result.sent += 1
                result.by_channel[channel.name] = result.by_channel.get(channel.name, 0) + 1
            elif outcome == "dead":
                result.dead += 1
            else:
                result.failed += 1
        return result

    def materialise(self, message: Message) -> Message:
        """A notice's letter, rendered once (zh and en) and kept exactly as sent."""
        p = message.payload
        if "template" not in p or message.case_id is None:
            return message
        eng = self.engine
        key = {
            "c": message.case_id,
            "s": int(p["event_seq"]),
            "n": message.name,
            "r": p.get("recipient_role", "applicant"),
        }
        lang = p.get("lang", "zh")
        with self.db.tx() as tx:
            rows = tx.all(NOTICE_ROWS, key)
            if not rows:
                for lg in letters.LANGS:
                    r = letters.render(p["template"], int(p["version"]), lg, p["context"])
                    tx.execute(
                        NOTICE_INSERT,
                        {
                            **key,
                            "l": lg,
                            "t": r.name,
                            "v": r.version,
                            "subj": r.subject,
                            "body": r.body,
                            "now": eng.sql_ts(eng.now()),
                        },
                    )
                rows = tx.all(NOTICE_ROWS, key)
        stored = {r[1]: r for r in rows}
        nid, _, subject, body = stored.get(lang) or stored["zh"]
        return replace(
            message,
            subject=subject,
            body_html=body,
            body_text=letters.html_to_text(body),
            notice_id=int(nid),
        )

    def retry(self, message_id: int) -> None:
        """Put a dead letter back in the queue, by hand (its attempts stay recorded)."""
        eng = self.engine
        with self.db.tx() as tx:
            status = tx.scalar("SELECT status FROM outbox WHERE id = :id", {"id": message_id})
            if status is None:
                raise NotFound(f"no outbox message {message_id}", f"没有编号为{message_id}的消息")
            if status != "dead":
                raise Conflict(
                    f"message {message_id} is {status}, not dead", f"消息状态为{status}，不是死信"
                )
            tx.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, "
                "next_attempt_at = :now WHERE id = :id",
                {"id": message_id, "now": eng.sql_ts(eng.now())},
            )


def router(
    channels: Mapping[str, Channel], by_kind: Mapping[str, str], default: str = "log"
) -> Callable[[Message], Channel]:
    """The row's own channel when it names one that is configured; else by kind."""

    def route(message: Message) -> Channel:
        if message.channel and message.channel in channels:
            return channels[message.channel]
        return channels[by_kind.get(message.kind, default)]

    return route


__all__ = ["Delivery", "DeliveryResult", "Policy", "router", "sql"]
