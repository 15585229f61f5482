"""The pages load in a real browser, in both languages."""

from __future__ import annotations

from typing import Any

from browser_support import Site, shoot


def test_portal_and_console_load(site: Site, page: Any) -> None:
    page.goto(site.url + "/")
    assert "信用信息异议、信用修复与投诉举报" in page.inner_text("h1")
    page.click("text=English")
    assert "Objections, credit repair and complaints" in page.inner_text("h1")
    shoot(page, "smoke-home")
    page.goto(site.url + "/console")
    assert "/console/login" in page.url
