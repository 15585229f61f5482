"""What the applicant's status page says: letters on their way ("being sent", not "no
notices"), the files they supplied, and the upload limits on the forms."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from api_support import PDF, Api, make_api
from conftest import World
from helpers import drive

from engine.factory import build_delivery


@pytest.fixture
def api(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Api:
    return make_api(world, tmp_path, monkeypatch)


def test_letters_on_their_way_and_my_files(api: Api) -> None:
    filed = api.apply("objection").json()
    no, code = filed["case_no"], filed["access_code"]
    first = api.status(no, code).json()
    assert first["notices"] == [] and first["notices_sending"] == 1  # the receipt, queued
    build_delivery(api.world.engine).deliver()
    delivered = api.status(no, code).json()
    assert delivered["notices_sending"] == 0 and len(delivered["notices"]) == 1
    assert delivered["uploads"] == []
    case_id = api.get("/cases", "office_handler", params={"case_no": no}).json()["items"][0]["id"]
    drive(api.world, case_id, "objection", ["request_supplement"])
    r = api.client.post(
        f"/api/v1/status/{no}/supplement",
        headers={"X-Access-Code": code},
        files={"files": ("营业执照.pdf", PDF, "application/pdf")},
    )
    assert r.status_code == 200, r.text
    mine = r.json()["uploads"]
    assert [u["filename"] for u in mine] == ["营业执照.pdf"] and mine[0]["size"] == len(PDF)

    # The page in words: a portal sign-in, then the status page.
    home = api.client.get("/")
    assert "每个文件不超过" not in home.text  # no upload form on the home page
    csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
    assert csrf is not None
    signed = api.client.post(
        "/status", data={"csrf": csrf.group(1), "case_no": no, "access_code": code}
    )
    assert signed.status_code == 200, signed.text
    page = signed.text
    assert "营业执照.pdf" in page and 'id="uploads"' in page
    assert "通知书正在发送" in page  # the supplement request letter is on its way
    # The forms that take files state the limits.
    assert "每个文件不超过10 MB，最多10个" in api.client.get("/complain").text
    rid = api.world.record()
    apply_form = api.client.get("/apply", params={"record_id": rid, "procedure": "objection"})
    assert "每个文件不超过10 MB，最多10个" in apply_form.text
