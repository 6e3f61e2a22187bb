"""The Dagster UI in a real browser: headless Chromium (Debian's) driven by Playwright.

On the deployment of docs/deployment.md (shared with test_deployment.py), a user opens the page
of `stock_daily_candles`, launches a backfill of a partition range from the Materialize dialog
following the steps of docs/operations.md ("From the UI") literally, with a range older than the
dialog's default 90-day window (the history reaches back further), and then finds the partitions
materialised and the checks listed and passed. Screenshots of
each step are saved under `artifacts/browser/` in the repository (gitignored).

Playwright's own browser download does not work here, so the test uses `/usr/bin/chromium`
(`apt-get install -y chromium`; `.ci/run` installs it) and skips, saying so, only when that
browser or the Playwright package is missing.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketdata_pipeline.defs.candles.checks import candle_check_specs
from marketdata_pipeline.lib.calendar import last_complete_day, stock_sessions
from marketdata_pipeline_tests.e2e.conftest import HISTORY_DAYS, REPO, SAVED_ARTIFACTS, Deployment

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.timeout(300)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "artifacts" / "browser"
UI_TIMEOUT_MS = 30_000
BACKFILL_DAYS = 5  # one digit: the Partitions tab check below matches counts >= it
#: The Materialize dialog first shows only the partitions of this many recent days.
RECENT_WINDOW_DAYS = 90

BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      partitionNames
      assetSelection { path }
      tags { key value }
      runs { runId status tags { key value } }
    }
    ... on Error { message }
  }
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's headless Chromium under Playwright (skips when it is not installed)."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(
            f"no Chromium at {CHROMIUM}: install it with `apt-get install -y chromium` "
            "(.ci/run does); Playwright's own browser download does not work here"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is missing (pip install '.[test]')"
    )
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser page with a desktop-sized viewport."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    yield page
    context.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    SAVED_ARTIFACTS.append(path)
    return path


def _older_week() -> tuple[dt.date, dt.date]:
    """Monday..Friday of a week of five NYSE sessions, older than the dialog's recent window
    (calendar days and stock sessions are then the same five partitions)."""
    assert HISTORY_DAYS > RECENT_WINDOW_DAYS + 14, "the history must reach past the window"
    day = last_complete_day() - dt.timedelta(days=RECENT_WINDOW_DAYS + 7)
    day -= dt.timedelta(days=day.weekday())
    while len(stock_sessions(day, day + dt.timedelta(days=4))) != BACKFILL_DAYS:
        day -= dt.timedelta(days=7)  # a holiday week: one further back
    return day, day + dt.timedelta(days=4)


def _dismiss_welcome(page) -> None:
    """The first visit to a fresh instance shows a 'Join the Dagster community' dialog."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(state="visible", timeout=10_000)
    except Exception:  # Playwright's TimeoutError: no dialog this time
        return
    skip.click()


def test_backfill_from_the_asset_page_and_its_partitions_and_checks(
    deployment: Deployment, page
) -> None:
    from playwright.sync_api import expect

    # The UI fills its panels asynchronously: give every expectation the same patience.
    expect.set_options(timeout=UI_TIMEOUT_MS)
    asset_url = f"{deployment.web_url}/assets/stock_daily_candles"
    page.goto(asset_url)
    _dismiss_welcome(page)
    expect(page.get_by_role("tab", name="Partitions")).to_be_visible()
    expect(page.get_by_text("Daily OHLCV candles of the active tracked stocks")).to_be_visible()
    _screenshot(page, "01-asset-overview")

    # The documented range: a week of NYSE sessions older than the dialog's default window, so
    # the steps of docs/operations.md are needed as written.
    start, end = _older_week()
    typed = f"[{start}...{end}]"

    # Without step 3's "Show all partitions", the dialog refuses a range outside its window.
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text(f"Showing the last {RECENT_WINDOW_DAYS} days")).to_be_visible()
    dialog.get_by_role("textbox").first.fill(typed)
    dialog.get_by_role("textbox").first.press("Enter")
    alert = page.get_by_role("dialog").filter(
        has_text="Could not find partitions for provided range"
    )
    expect(alert).to_be_visible()
    alert.get_by_role("button", name="OK", exact=True).click()
    expect(alert).to_be_hidden()
    # Leave by reloading: Cancel would blur the box, which re-parses the range and alerts again.
    page.goto(asset_url)

    # docs/operations.md, "From the UI", step by step.
    # 2. Click Materialize…: the dialog "Launch runs to materialize stock_daily_candles" opens.
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize stock_daily_candles")).to_be_visible()
    # 3. It shows the last 90 days: click "Show all partitions" in that notice first.
    expect(dialog.get_by_text(f"Showing the last {RECENT_WINDOW_DAYS} days")).to_be_visible()
    dialog.get_by_text("Show all partitions", exact=True).click()
    expect(dialog.get_by_text(f"Showing the last {RECENT_WINDOW_DAYS} days")).to_be_hidden()
    # 4. Type the range in the selection box and press Enter: the count, and the single run.
    selection = dialog.get_by_role("textbox").first
    selection.fill(typed)
    selection.press("Enter")
    expect(dialog.get_by_text(f"{BACKFILL_DAYS} partitions", exact=True)).to_be_visible()
    expect(dialog.get_by_text("Backfills all partitions in a single run.")).to_be_visible()
    _screenshot(page, "02-materialize-dialog")
    # 5. Launch backfill: a notice says "Created backfill <id>".
    dialog.get_by_role("button", name="Launch backfill").click()
    toast = page.get_by_text(re.compile(r"Created backfill \w+"))
    expect(toast).to_be_visible()
    backfill_id = toast.inner_text().split()[-1]

    def finished() -> dict | None:
        result = deployment.graphql(BACKFILL_STATUS, {"id": backfill_id})
        backfill = result["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill if backfill["status"] not in ("REQUESTED", "CANCELING") else None

    began = time.monotonic()
    backfill = deployment.wait_for(
        f"the UI's backfill {backfill_id}", finished, timeout=150, interval=2
    )
    print(f"UI backfill {backfill_id} finished in {time.monotonic() - began:.0f} s")
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert backfill["assetSelection"] == [{"path": ["stock_daily_candles"]}]
    assert sorted(backfill["partitionNames"]) == [str(d) for d in stock_sessions(start, end)]
    assert {"key": "dagster/from_ui", "value": "true"} in backfill["tags"]
    assert [r["status"] for r in backfill["runs"]] == ["SUCCESS"]  # one run for the range
    # The instance's run coordinator says why the run exists, as our own launchers do.
    (run,) = backfill["runs"]
    assert {"key": "marketdata/trigger", "value": "ui-backfill"} in run["tags"], run["tags"]

    # The Partitions tab: the session partitions from MARKETDATA_START_DATE, the range
    # materialised.
    page.get_by_role("tab", name="Partitions").click()
    # The counts arrive after the tab renders (first "Materialized (0)"): wait for ours.
    at_least_ours = re.compile(rf"Materialized \((?:[{BACKFILL_DAYS}-9]|[1-9]\d+)\)")
    expect(page.get_by_text(at_least_ours).first).to_be_visible()
    # Stock partitions are NYSE sessions: the first and the last session are the ends.
    sessions = stock_sessions(deployment.start_date, last_complete_day())
    expect(page.get_by_text(str(sessions[0])).first).to_be_visible()
    expect(page.get_by_text(str(sessions[-1])).first).to_be_visible()
    _screenshot(page, "03-partitions")

    # The Checks tab lists every check of the asset, ohlcv_schema first among the blocking ones.
    page.get_by_role("tab", name="Checks").click()
    for spec in candle_check_specs("stock_daily_candles"):
        expect(page.get_by_text(spec.name, exact=True).first).to_be_visible()
    page.get_by_text("ohlcv_schema", exact=True).first.click()
    expect(page.get_by_text("This is a blocking asset check", exact=False).first).to_be_visible()
    expect(page.get_by_text("Passed", exact=True).first).to_be_visible()
    _screenshot(page, "04-checks-ohlcv_schema")
