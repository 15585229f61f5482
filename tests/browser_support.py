"""Browser tests: redress served for real (uvicorn, in a thread, on loopback) and driven by
Playwright in Debian's Chromium (`/usr/bin/chromium`, installed by .ci/run; never downloaded).

Screenshots go to var/screenshots/ (README): each page at desktop (1280 px) and phone (375 px)
width. Tests skip with a message where Chromium is not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from api.app import create_app
from engine.db import Database
from engine.demo import Staff, add_staff
from engine.migrate import upgrade
from engine.service import Engine

CHROMIUM = os.environ.get("REDRESS_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}


@dataclass
class Site:
    url: str
    engine: Engine
    staff: Staff


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    monkeypatch.setenv("REDRESS_VAR_DIR", str(tmp_path))
    from engine.settings import get_settings

    get_settings.cache_clear()
    db = Database(f"sqlite:///{tmp_path / 'site.db'}")
    upgrade(db.engine)
    engine = Engine(db)
    staff = add_staff(engine)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield Site(f"http://127.0.0.1:{port}", engine, staff)
    finally:
        server.should_exit = True
        thread.join(10)
        db.dispose()
        get_settings.cache_clear()


# Per module, not per session: Playwright's sync API runs an event loop in this thread while it
# is open, and later tests (the flows) call asyncio.run().
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    pg = context.new_page()
    yield pg
    context.close()


def shoot(page: Any, name: str) -> None:
    """Screenshots of the current page at desktop and phone width."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)
