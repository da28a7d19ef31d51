"""The board's charts and the coordinator's one-page report, in a real browser (Chromium).

A negotiation of the demo's size (twelve members, eight items, two versions, two rounds) is played
over the API. Each chart is photographed on the boards that show it (``tmp_path``; also in
``$KOOPKRACHT_SCREENSHOTS`` when set, for people to look at); the coordinator's cohesion chart
gains the vendor's next round without a reload; members' and the vendor's boards name no other
member through the charts, and the vendor's has no cohesion; the report prints to exactly one A4
page, and no other party reaches it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from services import demo
from tests.e2e.conftest import RunningStack
from tests.e2e.test_dashboard import browser, sign_in  # noqa: F401 (a fixture)

CHART_IDS = ("cohesion-history", "support-shares", "satisfaction-heatmap", "own-positions")


def keep(page: Any, selector: str, name: str, folder: Path) -> Path:
    """A screenshot of one element, in ``folder`` and, when asked, in ``$KOOPKRACHT_SCREENSHOTS``."""
    path = folder / f"{name}.png"
    page.locator(selector).screenshot(path=str(path))
    shots = os.environ.get("KOOPKRACHT_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        (Path(shots) / path.name).write_bytes(path.read_bytes())
    return path


def pdf_pages(pdf: bytes) -> int:
    """The number of pages of a PDF, counted twice (no PDF library is among the dependencies): the
    page objects (``/Type /Page``, not ``/Pages``) and the page tree's ``/Count``; they must agree."""
    objects = len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))
    counts = [int(c) for c in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)", pdf, re.S)]
    counts += [int(c) for c in re.findall(rb"/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", pdf, re.S)]
    assert counts and max(counts) == objects, (objects, counts)
    return objects


def demo_negotiation(stack: RunningStack) -> dict[str, Any]:
    """The demo's story up to its second round: twelve members, eight items, versions 1 and 2."""
    _, coordinator_key = stack.organisation("SURF", "coordinator")
    vendor_id, vendor_key = stack.organisation("Nimbus Cloud Office", "vendor")
    members = {short: stack.organisation(name, "member") for short, name, _ in demo.MEMBERS}
    api = stack.client(coordinator_key)
    body = {"title": "Cloud office privacy terms", "vendor_id": vendor_id, "items": [{"key": k} for k in demo.ITEMS]}
    nid = api.post("/v1/negotiations", json=body).json()["id"]
    for short, _, weight in demo.MEMBERS:
        invited = api.post(
            f"/v1/negotiations/{nid}/members", json={"organisation_id": members[short][0], "weight": weight}
        )
        assert invited.status_code == 201, invited.text
    for short, wanted in demo.positions().items():
        member = stack.client(members[short][1])
        for key, position in wanted.items():
            assert member.put(f"/v1/negotiations/{nid}/positions/{key}", json=position).status_code == 200
    vendor = stack.client(vendor_key)
    assert api.post(f"/v1/negotiations/{nid}/demand/publish").status_code == 201
    answered = vendor.post(f"/v1/negotiations/{nid}/responses", json={"demand_version": 1, "items": demo.ROUNDS[0]})
    assert answered.status_code == 201, answered.text
    for short in ("rug", "tud"):  # the two universities give way on data location
        stack.client(members[short][1]).put(
            f"/v1/negotiations/{nid}/positions/data-location", json={"priority": "must", "accepted": ["NL", "EU"]}
        )
    assert api.post(f"/v1/negotiations/{nid}/demand/publish").status_code == 201
    answered = vendor.post(f"/v1/negotiations/{nid}/responses", json={"demand_version": 2, "items": demo.ROUNDS[1]})
    assert answered.status_code == 201, answered.text
    return {
        "nid": nid,
        "coordinator": coordinator_key,
        "vendor": vendor_key,
        "members": members,
        "names": [name for _, name, _ in demo.MEMBERS],
        "ids": [members[short][0] for short, _, _ in demo.MEMBERS],
    }


def test_the_charts_the_report_and_who_sees_them(
    browser: Any,  # noqa: F811
    stack: RunningStack,
    tmp_path: Path,
) -> None:
    if stack.database != "sqlite":
        pytest.skip("the charts draw the same documents on either database: once is enough")
    # Given the demo's negotiation after two versions and two rounds
    n = demo_negotiation(stack)
    board = f"{stack.base_url}/dashboard/n/{n['nid']}"

    # When the coordinator opens the board
    coordinator = sign_in(browser, stack, n["coordinator"])
    coordinator.goto(board)
    coordinator.evaluate("window.__notReloaded = true")
    # Then it shows cohesion over V1 R1 V2 R2, the support shares and the named heat map
    history = coordinator.locator("#cohesion-history .point")
    assert history.count() == 4
    for chart in ("cohesion-history", "support-shares", "satisfaction-heatmap"):
        keep(coordinator, f"#{chart}", f"coordinator-{chart}", tmp_path)
    assert coordinator.locator("#satisfaction-heatmap .member").count() == 12
    keep(coordinator, "main", "coordinator-board", tmp_path)
    # and each chart's figures are a table to read out (the text alternative)
    coordinator.locator("#cohesion-history-figures summary").click()
    assert coordinator.locator("#cohesion-history-figures tbody tr").count() == 4

    # When the vendor answers round 3, the coordinator's chart gains it without a reload
    vendor_api = stack.client(n["vendor"])
    answered = vendor_api.post(
        f"/v1/negotiations/{n['nid']}/responses", json={"demand_version": 2, "items": demo.ROUNDS[2]}
    )
    assert answered.status_code == 201
    coordinator.locator("#cohesion-history .point.responded").nth(2).wait_for(timeout=10_000)
    assert coordinator.evaluate("window.__notReloaded") is True
    assert coordinator.locator("#cohesion").inner_text() == "100%"
    keep(coordinator, "#cohesion-history", "coordinator-cohesion-history-live", tmp_path)

    # And a member sees its own positions and the counts, with no other member's name
    tud_key = n["members"]["tud"][1]
    member = sign_in(browser, stack, tud_key)
    member.goto(board)
    for chart in CHART_IDS:
        assert member.locator(f"#{chart}").count() == 1, chart
    keep(member, "#own-positions", "member-own-positions", tmp_path)
    keep(member, "#satisfaction-heatmap", "member-satisfaction-counts", tmp_path)
    charts = member.locator("#charts").inner_html()
    for name, organisation_id in zip(n["names"], n["ids"], strict=True):
        if name != "TU Delft":
            assert name not in charts and organisation_id not in charts, name
    # in Dutch too
    member.goto(f"{board}?lang=nl")
    assert "Cohesie over eisversies en rondes" in member.locator("#cohesion-history").inner_html()
    keep(member, "#charts", "member-charts-nl", tmp_path)

    # And the vendor's board has no chart (support is not disclosed) and no member's name
    vendor = sign_in(browser, stack, n["vendor"])
    vendor.goto(board)
    assert vendor.locator("#charts").count() == 0
    assert not any(name in vendor.content() for name in n["names"])
    # When the coordinator discloses support to the vendor
    disclosed = stack.client(n["coordinator"]).put(
        f"/v1/negotiations/{n['nid']}/policy", json={"disclose_support_to_vendor": True}
    )
    assert disclosed.status_code == 200, disclosed.text
    vendor.goto(board)
    # Then the vendor's board shows the published support shares, and still no cohesion, heat map or member
    assert vendor.locator("#support-shares").count() == 1
    assert vendor.locator("#cohesion-history, #satisfaction-heatmap, #own-positions, .inclusion").count() == 0
    keep(vendor, "#support-shares", "vendor-support-shares-disclosed", tmp_path)
    page = vendor.content()
    assert not any(name in page for name in n["names"])
    assert not any(organisation_id in page for organisation_id in n["ids"])

    # When the coordinator opens the report for the member council
    coordinator.goto(f"{board}/report")
    assert coordinator.get_by_role("button", name="Print / save as PDF").is_visible()
    assert coordinator.locator("#report-cohesion").inner_text() == "100%"
    assert coordinator.locator("#report-demand tbody tr").count() == 8
    keep(coordinator, "#report", "coordinator-report", tmp_path)
    # Then it prints to exactly one A4 page
    pdf = coordinator.pdf(format="A4", print_background=True)
    (tmp_path / "report.pdf").write_bytes(pdf)
    shots = os.environ.get("KOOPKRACHT_SCREENSHOTS")
    if shots:
        (Path(shots) / "coordinator-report.pdf").write_bytes(pdf)
    assert pdf_pages(pdf) == 1
    box = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert box is not None
    width, height = (float(v) for v in box.groups())
    assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, (width, height)  # A4 in points (Chromium rounds to px)
    # And in Dutch too
    coordinator.goto(f"{board}/report?lang=nl")
    assert coordinator.get_by_role("button", name="Afdrukken / opslaan als pdf").is_visible()
    assert pdf_pages(coordinator.pdf(format="A4", print_background=True)) == 1
    keep(coordinator, "#report", "coordinator-report-nl", tmp_path)
    coordinator.goto(f"{board}/report?lang=en")
    # (and as the printer sees it: the print stylesheet, on an A4-wide page, for people to look at)
    coordinator.emulate_media(media="print")
    coordinator.set_viewport_size({"width": 794, "height": 1123})
    keep(coordinator, "body", "coordinator-report-print", tmp_path)
    coordinator.emulate_media(media="screen")

    # And nobody else reaches it: the vendor and a member are refused (403), an outsider finds nothing (404)
    _, outsider_key = stack.organisation("Hogeschool Elders", "member")
    outsider = sign_in(browser, stack, outsider_key)
    for page_of, status in ((vendor, 403), (member, 403), (outsider, 404)):
        response = page_of.goto(f"{board}/report")
        assert response is not None and response.status == status
        text = page_of.content()
        assert not any(name in text for name in n["names"] if name != "TU Delft")
