"""Two deliverers rendering one notice at the same moment (PostgreSQL, where they run in
parallel): a notice to the applicant is one outbox message per channel (in-app, mail), and two
deliverers may take the two at once. Both find no stored letter and render it; the second
insert used to fail on the unique key and record a failed send (retried 30 s later), which
tests/cli/test_scale_load.py saw under load. Now the second reads the letter the first stored."""

from __future__ import annotations

import threading
import time

import pytest
import sqlalchemy as sa
from conftest import World
from helpers import open_objection

from engine.channels import LogChannel, Message
from engine.outbox import NOTICE_INSERT, Delivery, router


def test_second_renderer_of_a_notice_reads_the_first_ones_letter(world: World, db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: two deliverers never render at once")
    engine = world.engine
    case = open_objection(world)
    delivery = Delivery(engine, router({"log": LogChannel()}, {}))
    now = world.clock.now()
    with engine.db.read() as conn:
        rows = conn.execute(
            sa.text("SELECT channel, id FROM outbox WHERE case_id = :c AND name = 'receipt'"),
            {"c": case.case_id},
        ).all()
    ids = {str(channel): int(i) for channel, i in rows}
    assert set(ids) == {"inapp", "email"}
    email = delivery.claim(ids["email"], now)
    assert email is not None
    key = {"c": case.case_id, "s": 1, "n": "receipt", "r": "applicant"}

    # The first deliverer (of the in-app message) has stored the letter, not yet committed.
    first = engine.db.engine.connect()
    got: list[Message | BaseException] = []
    try:
        tx = first.begin()
        for lang in ("zh", "en"):
            first.execute(
                sa.text(NOTICE_INSERT),
                {**key, "l": lang, "t": "receipt", "v": 1, "subj": f"first {lang}"}
                | {"body": f"<p>first {lang}</p>", "now": engine.sql_ts(now)},
            )
        backend = first.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

        # The second (of the mail) renders the same letter meanwhile and waits on the first's
        # key.
        def second() -> None:
            try:
                got.append(delivery.materialise(email))
            except BaseException as exc:  # what the deliverer recorded as a failed send
                got.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        blocked = "SELECT count(*) FROM pg_stat_activity WHERE :b = ANY(pg_blocking_pids(pid))"
        deadline = time.monotonic() + 10
        waiting = 0
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.02)
            with engine.db.read() as conn:  # a new transaction: pg_stat_activity is a snapshot
                waiting = conn.execute(sa.text(blocked), {"b": backend}).scalar_one()
        assert waiting, "the second deliverer never reached the insert"
        tx.commit()
    finally:
        first.close()  # rolls back whatever is left, so that the schema can be dropped
    thread.join(10)

    (result,) = got
    assert isinstance(result, Message), repr(result)
    assert result.subject == "first zh" and result.body_html == "<p>first zh</p>"
    with engine.db.read() as conn:
        stored = conn.execute(
            sa.text("SELECT lang, subject FROM notices WHERE case_id = :c ORDER BY lang"),
            {"c": case.case_id},
        ).all()
    assert [tuple(r) for r in stored] == [("en", "first en"), ("zh", "first zh")]
