"""The wrong-access-code guard never refuses a correct code on a case that was not itself
attacked: counts per (case number, client) and, far higher, per client, kept in the database
so that every worker shares them; the wait is given in minutes."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from api_support import Api, make_api, problem
from conftest import World

from engine.applicants import AccessGuard, TooManyAttempts


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    real: Callable[..., Awaitable[Any]] = asyncio.sleep

    async def no_wait(delay: float, *args: Any, **kwargs: Any) -> Any:
        return await real(0, *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", no_wait)  # the slow-down is tested elsewhere
    return make_api(world, tmp_path, monkeypatch)


def filed(api: Api) -> tuple[str, str]:
    r = api.apply("objection")
    assert r.status_code == 201, r.text
    return r.json()["case_no"], r.json()["access_code"]


def test_an_attacked_case_locks_only_itself(api: Api) -> None:
    attacked, attacked_code = filed(api)
    other, other_code = filed(api)
    for _ in range(10):
        problem(api.status(attacked, "WRONGCODE9"), 404)
    # The attacked case refuses even its right code from this client, with the wait in minutes.
    locked = problem(api.status(attacked, attacked_code), 429, "too_many_attempts")
    assert "分钟" in locked["detail_zh"] and "minute" in locked["detail"]
    assert 0 < int(api.status(attacked, attacked_code).headers["retry-after"]) <= 900
    # Another applicant behind the same address (an office, a mobile network) is let in.
    assert api.status(other, other_code).status_code == 200
    # And a second worker process reads the same counts.
    second = Api(api.world)
    assert second.status(attacked, attacked_code).status_code == 429
    assert second.status(other, other_code).status_code == 200


def test_a_client_over_its_far_bound_is_refused_wrong_codes_not_right_ones(api: Api) -> None:
    api.app.state.access_guard.client_lock_after = 30
    mine, my_code = filed(api)
    # Thirty wrong codes spread over many numbers: none reaches the per-case bound.
    for i in range(30):
        problem(api.status(f"YY20260407GUESS{i:02d}", "WRONGCODE9"), 404)
    problem(api.status("YY20260407NEWONE", "WRONGCODE9"), 429, "too_many_attempts")
    problem(api.status(mine, "WRONGCODE9"), 429, "too_many_attempts")
    # The right code on a case not attacked is never refused.
    assert api.status(mine, my_code).status_code == 200


def test_counts_per_client_and_window(world: World) -> None:
    """Engine level, two clients: the case attacked from one address stays open to another;
    the window passing forgets the failures."""
    guard = AccessGuard(world.engine, slow_after=3, lock_after=10, window_s=900)
    for _ in range(10):
        guard.failed("YY20260407AAAAAA", "10.0.0.1")
    assert guard.locked("YY20260407AAAAAA", "10.0.0.1") is not None
    assert guard.locked("YY20260407AAAAAA", "10.0.0.2") is None  # the applicant's own phone
    assert guard.locked("YY20260407BBBBBB", "10.0.0.1") is None
    with pytest.raises(TooManyAttempts):
        guard.failed("YY20260407AAAAAA", "10.0.0.1")
    assert guard.failed("YY20260407AAAAAA", "10.0.0.2") == 0.0  # its own count: the first
    from conftest import at

    world.clock.set(at("2026-04-07 09:16"))  # fifteen minutes on
    assert guard.locked("YY20260407AAAAAA", "10.0.0.1") is None
    assert guard.failed("YY20260407AAAAAA", "10.0.0.1") == 0.0
