"""End to end in a real Chromium (Debian's /usr/bin/chromium, driven by Playwright) against a live server.

An operator logs in, opens every page (screenshots saved for review), sees the charts drawn with the
number of buckets the data holds, acknowledges an event and sees the row change; a viewer is refused the
same action with a 403; a hidden tab stops polling; no page logs a JavaScript error.
Screenshots go to a temporary directory, or to CONSOLE_SCREENSHOT_DIR when set (docs/ images come from there).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from anomaly.models import EventStatus
from console.models import EventNote
from sensors.outbox import record_sent
from sensors.protocol import format_alert_frame, format_server_frame
from sensors.services.frames import server_frame_rows
from sensors.settings import frame_layout
from tests.console.conftest import PASSWORD, Plant, build_plant, user_in
from tests.console.test_eventlogs_page import build_logs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API keeps an event loop on this thread; the ORM calls of the test are still synchronous.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("CONSOLE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target


class Session:
    """One browser context and page, collecting every console error and uncaught exception."""

    def __init__(self, browser: Browser, base_url: str, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, base_url=base_url)  # type: ignore[arg-type]
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text} at {message.location}")

    def log_in(self, username: str) -> None:
        self.page.goto("/")
        assert "/login/" in self.page.url
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(lambda url: "/login/" not in url)

    def open(self, path: str) -> None:
        response = self.page.goto(path)
        assert response is not None, path
        assert response.status == 200, f"{path}: {response.status}"
        self.page.wait_for_load_state("networkidle")

    def chart_points(self, name: str) -> int:
        """Buckets holding a reading in the first series of the drawn uPlot chart `name`."""
        self.page.wait_for_function(f"document.querySelector('[data-chart=\"{name}\"]')?.uplot !== undefined")
        return int(
            self.page.evaluate(
                f"document.querySelector('[data-chart=\"{name}\"]').uplot.data[1].filter(v => v !== null).length"
            )
        )

    def chart_start(self, name: str) -> datetime:
        seconds = self.page.evaluate(f"document.querySelector('[data-chart=\"{name}\"]').uplot.data[0][0]")
        return datetime.fromtimestamp(seconds, tz=UTC)

    def close(self) -> None:
        self.context.close()


def buckets_with_readings(times: pd.DatetimeIndex, start: datetime, span: timedelta, seconds: int) -> int:
    inside = times[(times >= start) & (times < start + span)]
    return len({int(moment.timestamp()) // seconds for moment in inside})


@pytest.mark.django_db(transaction=True)
def test_operator_walks_every_page(live_server: object, browser: Browser, screenshots: Path) -> None:
    plant: Plant = build_plant(datetime.now(tz=UTC))
    # what the bridge logs once it has written frames: the real server frame of the last readings, an alert
    layout = frame_layout()
    frames = [line for block in server_frame_rows(plant.now) for line in format_server_frame(block, layout)]
    frames.append(format_alert_frame("001", plant.now, "0100", "000", layout))
    record_sent(frames, layout.separator, time.time())
    build_logs(plant.now)
    user_in("operator", "olga")
    session = Session(browser, str(live_server), DESKTOP)
    session.log_in("olga")
    pages = {
        "overview": "/",
        "sensors": "/sensors/",
        "sensor": "/sensors/001/",
        "sensor-7d": "/sensors/001/?range=7d",
        "events": "/events/",
        "event": f"/events/{plant.open_event.pk}/",
        "forecasts": "/forecasts/",
        "harvest": "/harvest/",
        "hosts": "/hosts/",
        "eventlogs": "/eventlogs/",
    }
    for name, path in pages.items():
        session.open(path)
        if name == "overview":
            session.page.wait_for_selector("#health table")
        session.page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        if name == "sensor":
            start = session.chart_start("sensor-flow")
            expected = buckets_with_readings(plant.reading_times, start, timedelta(hours=24), 300)
            assert expected >= 287
            assert session.chart_points("sensor-flow") == expected
            assert session.chart_points("sensor-pressure") == expected
            assert session.page.locator('[data-chart="sensor-flow"] canvas').count() == 1
            assert session.page.locator("pre.frames").inner_text().count("$S,001,") == 10
        if name == "sensor-7d":
            start = session.chart_start("sensor-flow")
            assert session.chart_points("sensor-flow") == buckets_with_readings(
                plant.reading_times, start, timedelta(days=7), 3600
            )
        if name == "hosts":
            start = session.chart_start("host-cpu")
            times = pd.DatetimeIndex(plant.sample_times)
            assert session.chart_points("host-cpu") == buckets_with_readings(times, start, timedelta(hours=1), 60)
        if name == "event":
            assert session.chart_points("event-evidence") > 0
        if name == "eventlogs":
            assert session.chart_points("eventlogs-throughput") == 25  # every clock hour of the last 24
            assert session.chart_points("eventlogs-timeline") == 10  # the flagged account's windows

    # acknowledge from the list, with a note, and see the row change without a reload
    session.open("/events/")
    row = session.page.locator(f"#event-{plant.open_event.pk}")
    assert row.get_attribute("data-status") == EventStatus.OPEN
    row.locator("input[name=note]").fill("crew sent to pump house 1")
    row.get_by_role("button", name="Acknowledge").click()
    session.page.wait_for_selector(f"#event-{plant.open_event.pk}[data-status=acknowledged]")
    plant.open_event.refresh_from_db()
    assert plant.open_event.status == EventStatus.ACKNOWLEDGED
    assert EventNote.objects.get(event=plant.open_event).note == "crew sent to pump house 1"

    # phone width: nothing wider than the screen, charts still drawn
    phone = Session(browser, str(live_server), PHONE)
    phone.context.add_cookies(session.context.cookies())  # type: ignore[arg-type]
    for name, path in {"overview-phone": "/", "sensor-phone": "/sensors/001/"}.items():
        phone.open(path)
        phone.page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
        assert phone.page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"), name
    assert phone.chart_points("sensor-flow") > 0

    # keyboard: the first Tab reaches the skip link, the next ones the navigation
    session.open("/")
    session.page.keyboard.press("Tab")
    assert session.page.evaluate("document.activeElement.className") == "skip"
    session.page.keyboard.press("Tab")
    session.page.keyboard.press("Tab")
    assert session.page.evaluate("document.activeElement.textContent") == "Overview"
    assert session.errors + phone.errors == []
    phone.close()
    session.close()


@pytest.mark.django_db(transaction=True)
def test_viewer_is_refused_an_action(live_server: object, browser: Browser) -> None:
    plant = build_plant(datetime.now(tz=UTC))
    user_in("viewer", "victor")
    session = Session(browser, str(live_server), DESKTOP)
    session.log_in("victor")
    session.open("/events/")
    row = session.page.locator(f"#event-{plant.open_event.pk}")
    assert row.get_by_role("button", name="Acknowledge").count() == 0  # not offered ...
    assert session.errors == []
    # ... and refused when sent anyway (a form post with the page's CSRF token)
    status, text = session.page.evaluate(
        """async (url) => {
            const token = document.querySelector("input[name=csrfmiddlewaretoken]")?.value
                || JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"];
            const response = await fetch(url, {method: "POST", headers: {"X-CSRFToken": token},
                                               body: new URLSearchParams({note: "viewer"})});
            return [response.status, await response.text()];
        }""",
        f"/events/{plant.open_event.pk}/acknowledge/",
    )
    assert status == 403
    assert "Not allowed (403)" in text
    plant.open_event.refresh_from_db()
    assert plant.open_event.status == EventStatus.OPEN
    session.close()


@pytest.mark.django_db(transaction=True)
def test_a_hidden_tab_stops_polling(live_server: object, browser: Browser) -> None:
    build_plant(datetime.now(tz=UTC))
    user_in("viewer", "victor")
    session = Session(browser, str(live_server), DESKTOP)
    session.log_in("victor")
    session.open("/events/")
    polls: list[str] = []
    session.page.on("request", lambda request: polls.append(request.url) if "/events/" in request.url else None)
    session.page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => true})")
    time.sleep(11)  # the list polls every 10 s
    assert polls == []
    session.page.evaluate("Object.defineProperty(document, 'hidden', {configurable: true, get: () => false})")
    session.page.wait_for_event("request", timeout=12_000)
    assert polls
    assert session.errors == []
    session.close()
