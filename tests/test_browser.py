"""End to end in a real headless Chromium (Debian's, driven by Playwright): login, a bad upload and its
errors, the fixed upload, commit, and the reviewer's dashboard with its plotly charts drawn.

The app runs for real in a server thread on 127.0.0.1 over a SQLite database of its own holding the
demo city. Every request the browser makes must go to that server: the app works offline.
Set UPDATE_SCREENSHOT=1 to write the README's screenshot (docs/screenshot.png).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from xlsx_factory import acquisition, vin, write_upload

from app import create_app
from fleet import jobs
from fleet.base import db
from fleet.base.models import User
from fleet.domain.demo import load_demo
from fleet.domain.users import add_user
from imports.stage import stage_batch

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "screenshot.png"
BUS_COMPANY = "濮阳市公共交通有限公司"
AGENCY_USER, AGENCY_PASSWORD = "browser-bus", "Chromium-Fleet-2026"
COMMIT_BUTTON = "form[action$='/commit'] [type=submit]"
# Never a browser downloaded by Playwright: only the system's.
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); the browser test needs it",
                allow_module_level=True)


@dataclass
class LiveServer:
    url: str
    app: Flask
    reviewer: tuple[str, str]  # the demo reviewer's username and password


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The app served on a free local port, over a migrated SQLite database with the demo city."""
    from werkzeug.serving import make_server

    url = "sqlite:///" + str(tmp_path_factory.mktemp("browser") / "fleet.sqlite3")
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    # Every upload goes to the background, so the progress page and its polling script are driven too.
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "browser-test-secret", "IMPORT_BACKGROUND_BYTES": 0})
    with app.app_context():
        session = db.get_session()
        demo = load_demo(session)
        add_user(session, AGENCY_USER, role="agency", password=AGENCY_PASSWORD, agency_name=BUS_COMPANY)
        session.commit()
    reviewer = next((name, password) for name, password, role in demo.users if role == "reviewer")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server", daemon=True)
    thread.start()
    yield LiveServer(f"http://127.0.0.1:{server.server_port}", app, reviewer)
    server.shutdown()
    thread.join(timeout=10)
    app.extensions["fleet.engine"].dispose()


@pytest.fixture
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(20_000)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        yield page, requested
        context.close()
        browser.close()


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("form.stacked [type=submit]")


def upload(page, base: str, path: Path) -> None:
    page.goto(f"{base}/uploads/")
    page.set_input_files("#file", str(path))
    with page.expect_navigation(url=re.compile(r"/uploads/\d+$")):
        page.click("form.stacked [type=submit]")
    wait_until_finished(page)


def wait_until_finished(page) -> None:
    """The progress page reloads itself (static/js/uploads.js) once the background job is done."""
    page.wait_for_selector(", ".join(f"[data-batch-status={s}]" for s in ("valid", "invalid", "committed", "failed")))


def test_upload_fix_commit_and_see_the_dashboard(browser_page, live_server, tmp_path: Path) -> None:
    page, requested = browser_page
    base = live_server.url
    rows = [acquisition(9001), acquisition(9002), acquisition(9003)]
    bad = [rows[0], {**rows[1], "county": "火星"}, {**rows[2], "vin": vin(9003)[:8] + "0" + vin(9003)[9:]}]
    bad_path = write_upload(tmp_path / "公交车购置-有错.xlsx", bad)
    fixed_path = write_upload(tmp_path / "公交车购置.xlsx", rows)

    log_in(page, base, AGENCY_USER, AGENCY_PASSWORD)
    upload(page, base, bad_path)
    errors = page.locator("table[data-findings=error] tbody tr")
    assert errors.count() == 2
    county = page.locator("table[data-findings=error] tr[data-code=unknown_county]")
    assert "火星" in county.inner_text() and "所属县区" in county.inner_text()
    assert page.locator("tr[data-code=vin_check_digit] td.num").inner_text() == "4"
    assert page.locator(COMMIT_BUTTON).count() == 0

    upload(page, base, fixed_path)
    assert page.get_attribute("[data-batch-status]", "data-batch-status") == "valid"
    with page.expect_navigation():
        page.click(COMMIT_BUTTON)
    if page.locator("[data-batch-status=importing]").count():
        assert page.locator("progress").count() == 1
    wait_until_finished(page)
    assert page.get_attribute("[data-batch-status]", "data-batch-status") == "committed"
    assert "新增 3 辆" in page.inner_text("main")

    page.context.clear_cookies()
    log_in(page, base, *live_server.reviewer)
    page.goto(f"{base}/")
    page.wait_for_selector("svg.main-svg")
    assert page.locator("svg.main-svg").count() >= 2
    page.wait_for_load_state("networkidle")
    shot = page.screenshot()  # the first screen: key figures and the first charts
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        SCREENSHOT.write_bytes(shot)

    elsewhere = [u for u in requested if not u.startswith(base + "/") and not u.startswith(("data:", "blob:"))]
    assert elsewhere == [], f"requests outside the app: {elsewhere}"


def test_the_progress_page_follows_a_background_job_by_itself(browser_page, live_server, tmp_path: Path) -> None:
    page, requested = browser_page
    path = write_upload(tmp_path / "公交车购置.xlsx", [acquisition(9101)])
    with live_server.app.app_context():
        session = db.get_session()
        uploader = session.scalar(sa.select(User).where(User.username == AGENCY_USER))
        batch = stage_batch(session, path.read_bytes(), None, file_name=path.name, user=uploader,
                            agency_id=uploader.agency_id)
        session.commit()
        batch_id = batch.id

    log_in(page, live_server.url, AGENCY_USER, AGENCY_PASSWORD)
    page.goto(f"{live_server.url}/uploads/{batch_id}")
    assert page.get_attribute("[data-batch-status]", "data-batch-status") == "received"
    assert page.locator("progress").count() == 1

    with live_server.app.app_context():
        assert jobs.run_import_job(batch_id) == "valid"
    # No click: the page's script polls the status and reloads itself when the job is done.
    page.wait_for_selector("[data-batch-status=valid]")
    assert any(u.endswith(f"/uploads/{batch_id}/status") for u in requested)


# The budget for a cold first view of the city dashboard, everything included.
FIRST_VIEW_BUDGET = 1_500_000
PHONE = {"width": 390, "height": 844}


def test_the_first_dashboard_view_transfers_at_most_1_5_mb(live_server, tmp_path: Path) -> None:
    """A cold browser (empty cache) signs in and opens `/`: every byte that came over the wire for it
    (Chromium's own count, headers and compressed bodies), the login page included. The figure is
    printed for the record (pytest -s)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
        page = context.new_page()
        page.set_default_timeout(30_000)
        devtools = context.new_cdp_session(page)
        devtools.send("Network.enable")
        urls: dict[str, str] = {}
        received: dict[str, int] = {}
        devtools.on("Network.requestWillBeSent", lambda event: urls.__setitem__(event["requestId"], event["request"]["url"]))
        def count(event: dict) -> None:
            received[event["requestId"]] = received.get(event["requestId"], 0) + event["encodedDataLength"]

        devtools.on("Network.dataReceived", count)
        devtools.on("Network.responseReceived", lambda event: count({"requestId": event["requestId"], "encodedDataLength": event["response"]["encodedDataLength"]}))
        # Chromium reports some bodies only in loadingFinished and others only in dataReceived: the larger.
        finished: dict[str, int] = {}
        devtools.on("Network.loadingFinished", lambda event: finished.__setitem__(event["requestId"], event["encodedDataLength"]))
        log_in(page, live_server.url, *live_server.reviewer)
        page.goto(f"{live_server.url}/")
        page.wait_for_selector("svg.main-svg")
        page.wait_for_load_state("networkidle")
        context.close()
        browser.close()
    by_url = {urls.get(key, key): max(size, finished.get(key, 0)) for key, size in received.items()}
    transferred = sum(by_url.values())
    print(f"\nfirst dashboard view (cold, login included): {len(by_url)} responses, {transferred / 1e6:.2f} MB transferred")
    assert any("/vendor/plotly-" in url for url in by_url)
    assert transferred <= FIRST_VIEW_BUDGET, by_url


def test_on_a_phone_the_last_columns_are_on_screen_and_the_menu_is_reached_with_tab(live_server, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    rows = [acquisition(9201), {**acquisition(9202), "county": "火星"}]
    bad = write_upload(tmp_path / "公交车购置-手机.xlsx", rows)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, locale="zh-CN", is_mobile=True, has_touch=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        log_in(page, live_server.url, AGENCY_USER, AGENCY_PASSWORD)
        upload(page, live_server.url, bad)

        def on_screen(selector: str) -> dict:
            box = page.locator(selector).first.bounding_box()
            assert box is not None, selector
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, (selector, box)
            return box

        problem = on_screen("table[data-findings=error] tr[data-code=unknown_county] td[data-label=问题]")
        column = on_screen("table[data-findings=error] tr[data-code=unknown_county] td[data-label=列]")
        # 所属县区 on one line, not a character a line.
        assert column["height"] < 2.5 * 20 and problem["width"] > 200
        page.goto(f"{live_server.url}/uploads/")
        on_screen("table[data-history] td[data-label=状态]")

        focused = []
        for _ in range(8):
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.id"))
            if focused[-1] == "nav-toggle":
                break
        assert focused[-1] == "nav-toggle", focused
        assert not page.locator("#main-nav").is_visible()
        page.keyboard.press("Space")
        assert page.locator("#main-nav").is_visible()
        context.close()
        browser.close()


def test_on_a_phone_the_charts_labels_are_whole_and_the_county_names_level(live_server) -> None:
    """Bars' labels used to run off a phone's chart and the county chart's names stood rotated and
    tiny, the last one cut: every bar label inside its chart and the screen, county names level."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for viewport in (PHONE, {"width": 1280, "height": 900}):
            context = browser.new_context(viewport=viewport, locale="zh-CN", is_mobile=viewport is PHONE)
            page = context.new_page()
            page.set_default_timeout(30_000)
            log_in(page, live_server.url, *live_server.reviewer)
            page.goto(f"{live_server.url}/")
            page.wait_for_selector("#chart-counties svg.main-svg")
            labels = page.evaluate(
                """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(plot => {
                    const frame = plot.querySelector('svg.main-svg').getBoundingClientRect();
                    return Array.from(plot.querySelectorAll('.bartext')).map(text => {
                        const box = text.getBoundingClientRect();
                        return {chart: plot.id, text: text.textContent, left: box.left, right: box.right,
                                frameLeft: frame.left, frameRight: frame.right};
                    });
                })"""
            )
            assert labels, viewport
            for label in labels:
                assert label["left"] >= label["frameLeft"] - 1 and label["right"] <= label["frameRight"] + 1, (viewport, label)
                assert label["right"] <= viewport["width"] + 1, (viewport, label)
            if viewport is PHONE:
                # The share alone on a phone: "67%" or the no-data words, never the long form.
                assert all("(" not in label["text"] for label in labels), labels
            ticks = page.evaluate(
                """() => Array.from(document.querySelectorAll('#chart-counties .ytick text')).map(text => ({
                    text: text.textContent, transform: text.getAttribute('transform') || '',
                    size: parseFloat(getComputedStyle(text).fontSize), top: text.getBoundingClientRect().top,
                    bottom: text.getBoundingClientRect().bottom,
                    frameTop: document.querySelector('#chart-counties svg.main-svg').getBoundingClientRect().top}))"""
            )
            assert len(ticks) >= 2, ticks
            for tick in ticks:
                assert "rotate" not in tick["transform"] and tick["size"] >= 12, (viewport, tick)
                assert tick["top"] >= tick["frameTop"], (viewport, tick)
            context.close()
        browser.close()
