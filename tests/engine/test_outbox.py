"""Outbox delivery to a real HTTP endpoint: signed, idempotent, retried, ordered per record."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import sqlalchemy as sa
from conftest import World
from helpers import drive, open_objection
from receiver import receiver

from engine.channels import LogChannel, WebhookChannel
from engine.outbox import Delivery, Policy, router


def _delivery(w: World, url: str, max_attempts: int = 4) -> Delivery:
    channels = {"log": LogChannel(), "platform": WebhookChannel(url, "s3cret", timeout=5)}
    return Delivery(
        w.engine,
        router(channels, {"platform_sync": "platform"}),
        Policy(max_attempts=max_attempts, base_delay=timedelta(seconds=30)),
    )


def _statuses(w: World) -> dict[str, int]:
    with w.engine.db.read() as conn:
        rows = conn.execute(sa.text("SELECT status, count(*) FROM outbox GROUP BY status")).all()
    return {r[0]: int(r[1]) for r in rows}


def test_platform_push_is_signed_and_idempotent(world: World) -> None:
    rec = world.record()
    with receiver() as r:
        result = _delivery(world, r.url).deliver()
        assert result.sent == 1 and result.by_channel == {"webhook": 1}
        (req,) = r.requests
        assert req["headers"]["Idempotency-Key"] == f"record:{rec}:v1"
        sig = hmac.new(b"s3cret", req["raw"], hashlib.sha256).hexdigest()
        assert req["headers"]["X-Redress-Signature"] == f"sha256={sig}"
        assert req["body"]["payload"] == {
            "record_id": rec,
            "version": 1,
            "status": "published",
            "disputed": False,
        }
        assert _delivery(world, r.url).deliver().sent == 0  # nothing twice


def test_endpoint_down_then_back_every_push_once_in_order(world: World) -> None:
    rec = world.record()
    case = open_objection(world, rec)
    drive(
        world,
        case.case_id,
        "objection",
        ["accept", "mark_disputed", "propose_decision", "approve_decision"],
    )
    with receiver() as r:
        r.fail_with = 503
        d = _delivery(world, r.url, max_attempts=10)
        first = d.deliver()
        # Only the first push per record is tried: later versions wait behind it.
        pushes = [q for q in r.requests]
        assert len(pushes) == 1 and first.failed == 1
        for minutes in (1, 2, 4):  # backoff: 30 s, 1 min, 2 min ...
            world.clock.advance(minutes=minutes)
            d.deliver()
        assert all(q["status"] == 503 for q in r.requests)
        r.fail_with = None
        world.clock.advance(hours=1)
        while d.deliver().sent:
            pass
        versions = [b["payload"]["version"] for b in r.bodies]
        assert versions == [1, 2, 3]  # published, disputed, revoked: each once, in order
        assert _statuses(world).get("pending", 0) == 0
    with world.engine.db.read() as conn:
        attempts = conn.execute(
            sa.text(
                "SELECT ok, answer FROM outbox_attempts a JOIN outbox o ON o.id = a.outbox_id "
                "WHERE o.idempotency_key = :k ORDER BY a.id"
            ),
            {"k": f"record:{rec}:v1"},
        ).all()
    assert [bool(a[0]) for a in attempts] == [False] * (len(attempts) - 1) + [True]
    assert attempts[0][1].startswith("503")


def test_failing_message_becomes_dead_letter_and_can_be_retried(world: World) -> None:
    world.record()
    with receiver() as r:
        r.fail_with = 500
        d = _delivery(world, r.url, max_attempts=3)
        for _ in range(3):
            d.deliver()
            world.clock.advance(hours=1)
        assert _statuses(world)["dead"] == 1
        with world.engine.db.read() as conn:
            mid = conn.execute(sa.text("SELECT id FROM outbox WHERE status = 'dead'")).scalar()
        r.fail_with = None
        d.retry(int(mid))
        assert d.deliver().sent == 1
        assert len(r.bodies) == 1
