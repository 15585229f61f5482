"""A case about a subject without a published record (the seeds' complaints): the schema and
every read of a case take it; its letters say nothing of a record."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import World
from helpers import open_objection

from engine.applicants import status_view
from engine.factory import build_delivery
from engine.queries import CaseFilter, list_cases
from engine.service import Actor


def test_a_case_without_a_record(world: World) -> None:
    opened = open_objection(world)
    with world.engine.db.write() as conn:  # what the next issue's complaint intake will file
        conn.execute(
            sa.text("UPDATE cases SET record_id = NULL WHERE id = :id"), {"id": opened.case_id}
        )
    handler = world.actor("office_handler")
    view = world.engine.case_view(opened.case_id, handler)
    assert view["record"] is None and view["determining_unit"] is None
    listed = list_cases(world.engine, handler, CaseFilter())[0]
    assert opened.case_id in {row["id"] for row in listed}
    done = world.engine.advance(opened.case_id, "accept", handler, {}, view["version"])
    assert done.state == "accepted"
    build_delivery(world.engine).deliver()  # the acceptance letter renders without a record
    with world.engine.db.read() as conn:
        statuses = conn.execute(
            sa.text("SELECT DISTINCT status FROM outbox WHERE case_id = :id AND kind = 'notice'"),
            {"id": opened.case_id},
        ).scalars()
        assert set(statuses) == {"sent"}
    me = Actor(name="applicant", role="applicant", case_id=opened.case_id)
    status = status_view(world.engine, me, "zh")
    assert status["record"] is None and status["state"] == "accepted"
    # The unit that made no finding sees nothing of it.
    assert opened.case_id not in {
        row["id"] for row in list_cases(world.engine, world.actor("amr_handler"), CaseFilter())[0]
    }
