"""API faults, injected by the real simulator over HTTP, through Dagster into a real Postgres.

Every fault ends one of two ways:

- transient (it stops after a few firings): the run retries and succeeds, and the table holds
  exactly what a fault-free fetch returns;
- persistent: the run fails with a specific error naming the symbol, the date range and the
  API's own message (never the key), the faulted symbol's stored rows are untouched, the other
  symbol is written, and the faulted symbol's `tracked_symbols` row carries the error.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time

import polars as pl
import psycopg
import pytest

from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.symbols import parse_symbol
from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    materialise,
    read_table,
    stock_daily_candles,
    store_rows,
)
from marketdata_pipeline_tests.reliability.conftest import symbol_status, track
from marketdata_pipeline_tests.resources import TEST_API_KEY, make_polygon

START, END = dt.date(2024, 3, 4), dt.date(2024, 3, 8)  # Monday..Friday: five sessions
WINDOW = f"{START}..{END}"
SYMBOLS = ["AAPL", "MSFT"]
ASSET = "stock_daily_candles"


def _resources(polygon, database_url: str) -> dict:
    database = PostgresDatabase(url=database_url)
    return {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }


def _run(polygon, database_url: str):
    return materialise(START, END, _resources(polygon, database_url), assets=[stock_daily_candles])


def _reference(sim) -> pl.DataFrame:
    """What a fault-free fetch of the window returns, in the candle schema."""
    client = make_polygon(sim).get_client()
    frames = [client.fetch_range(parse_symbol(s), START, END) for s in SYMBOLS]
    sim.reset()  # counters only: the request log must show the faulted run alone
    return pl.concat(frames).select(CANDLE_COLUMNS).sort("symbol", "day")


def _seed(sim, database_url: str) -> pl.DataFrame:
    """Store the window's fault-free rows (as an earlier run would) and return them."""
    reference = _reference(sim)
    with psycopg.connect(database_url) as conn:
        store_rows(
            conn,
            ASSET,
            reference,
            start=START,
            end_exclusive=END + dt.timedelta(days=1),
            symbols=SYMBOLS,
            source_family="simulator",  # the simulator's rows, as its runs store them
        )
    return _stored(database_url)


def _stored(database_url: str) -> pl.DataFrame:
    return read_table(database_url, ASSET).drop("fetched_at")


def _requests_for(sim, ticker: str) -> list[dict]:
    return [e for e in sim.stats()["log"] if e["ticker"] == ticker]


def _fired(sim) -> int:
    """How often the fault rules fired (counted when taken, even if the reply is still slow)."""
    return sum(rule["fired"] for rule in sim.state.faults())


def _drain(sim, timeout: float = 5.0) -> None:
    """Wait until slow (delay-fault) replies have finished, so they cannot land in the next
    test's request log: the simulator logs a request when its reply is done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(1 for e in sim.stats()["log"] if e["fault"]) >= _fired(sim):
            return
        time.sleep(0.05)


# -- transient faults: retried, then success -------------------------------------------------

TRANSIENT = {
    "429 burst without Retry-After": [dict(kind="status", status_code=429, times=3)],
    "500/502/503/504 with nginx HTML bodies": [
        dict(kind="status", status_code=code, body="html", times=1) for code in (500, 502, 503, 504)
    ],
    "connection reset mid-body": [dict(kind="reset", times=2)],
    "truncated JSON, invalid JSON, HTML with 200, resultsCount mismatch": [
        dict(kind="truncated_json", times=1),
        dict(kind="invalid_json", times=1),
        dict(kind="invalid_json", body="html", times=1),
        dict(kind="results_count_mismatch", times=1),
    ],
}


@pytest.mark.parametrize("faults", TRANSIENT.values(), ids=TRANSIENT.keys())
def test_transient_faults_are_retried_and_the_run_succeeds(sim, database_url, faults):
    track(database_url, SYMBOLS)
    expected = _reference(sim).drop("fetched_at")
    for fault in faults:
        sim.add_fault(ticker="AAPL", **fault)
    failures = sum(f["times"] for f in faults)
    result = _run(make_polygon(sim, max_attempts=failures + 1), database_url)
    assert result.success
    assert _stored(database_url).equals(expected)
    attempts = _requests_for(sim, "AAPL")
    assert len(attempts) == failures + 1
    assert attempts[-1]["status"] == 200
    assert {s: st for s, (st, _) in symbol_status(database_url).items()} == {
        "AAPL": "ok",
        "MSFT": "ok",
    }


def test_a_transient_fault_on_the_identity_requests_is_retried(sim, database_url):
    """A hand-typed stock's security (its ticker details, then its events) goes through the
    same client: a 503 twice on the details is retried, the security stored, the run's
    candles unchanged."""
    track(database_url, SYMBOLS, identified=False)
    expected = _reference(sim).drop("fetched_at")
    sim.add_fault(kind="status", status_code=503, match_path="/v3/reference/tickers/AAPL", times=2)
    result = _run(make_polygon(sim, max_attempts=3), database_url)
    assert result.success
    assert _stored(database_url).equals(expected)
    details = [e for e in sim.stats()["log"] if e["path"] == "/v3/reference/tickers/AAPL"]
    assert [e["status"] for e in details] == [503, 503, 200]
    with psycopg.connect(database_url) as conn:
        held = conn.execute(
            "SELECT ticker FROM marketdata.ticker_history ORDER BY ticker"
        ).fetchall()
    assert held == [("AAPL",), ("MSFT",)]


def test_read_timeout_is_retried_and_the_run_succeeds(sim, database_url):
    track(database_url, SYMBOLS)
    expected = _reference(sim).drop("fetched_at")
    # The server answers after 1.5 s, the client gives up reading after 0.4 s.
    sim.add_fault(kind="delay", seconds=1.5, ticker="AAPL", times=1)
    result = _run(make_polygon(sim, timeout_seconds=0.4), database_url)
    assert result.success
    assert _stored(database_url).equals(expected)
    assert _fired(sim) == 1
    _drain(sim)


def test_retry_after_is_honoured_on_a_429_burst(sim, database_url):
    track(database_url, SYMBOLS)
    expected = _reference(sim).drop("fetched_at")
    sim.add_fault(kind="status", status_code=429, retry_after=1, ticker="AAPL", times=2)
    # The client's own backoff is capped at 0.1 s: only Retry-After explains a 1 s gap.
    result = _run(make_polygon(sim), database_url)
    assert result.success
    assert _stored(database_url).equals(expected)
    attempts = _requests_for(sim, "AAPL")
    assert [a["status"] for a in attempts] == [429, 429, 200]
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.95 for gap in gaps), gaps


def test_429_without_retry_after_waits_at_least_one_budget_slot(sim, database_url):
    track(database_url, SYMBOLS)
    sim.add_fault(kind="status", status_code=429, ticker="AAPL", times=2)
    # 300 requests/minute = one slot every 0.2 s, above the 0.1 s backoff cap.
    result = _run(make_polygon(sim, requests_per_minute=300), database_url)
    assert result.success
    attempts = _requests_for(sim, "AAPL")
    assert [a["status"] for a in attempts] == [429, 429, 200]
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.19 for gap in gaps), gaps


def test_delayed_status_is_stored_as_provisional(sim, database_url):
    track(database_url, SYMBOLS)
    sim.add_fault(kind="delayed_status", ticker="AAPL")
    result = _run(make_polygon(sim), database_url)
    assert result.success  # DELAYED carries data: accepted, flagged, and re-fetched later
    stored = read_table(database_url, ASSET)
    provisional = dict(stored.group_by("symbol").agg(pl.col("provisional").all()).iter_rows())
    assert provisional == {"AAPL": True, "MSFT": False}
    check = check_evaluations(result)[f"{ASSET}:provisional_bars"]
    assert not check.passed and check.severity.value == "WARN"


# -- persistent faults: a specific error, nothing half-written -------------------------------

PERSISTENT = {
    "429 forever": (
        dict(kind="status", status_code=429),
        {},
        ["HTTP 429", "exceeded the maximum requests per minute", "gave up after 4 attempts"],
        4,
    ),
    "502 HTML forever": (
        dict(kind="status", status_code=502, body="html"),
        {},
        ["HTTP 502 502 Bad Gateway (HTML error page)", "gave up after 4 attempts"],
        4,
    ),
    "connection reset forever": (
        dict(kind="reset"),
        {},
        ["connection failed (RemoteProtocolError)", "gave up after 4 attempts"],
        4,
    ),
    "read timeout forever": (
        dict(kind="delay", seconds=1.0),
        dict(timeout_seconds=0.3, max_attempts=2),
        ["timed out (ReadTimeout)", "gave up after 2 attempts"],
        2,
    ),
    "truncated JSON forever": (
        dict(kind="truncated_json"),
        {},
        ["is malformed", "not valid JSON", "gave up after 4 attempts"],
        4,
    ),
    "invalid JSON forever": (
        dict(kind="invalid_json"),
        {},
        ["is malformed", "not valid JSON"],
        4,
    ),
    "next_url that repeats forever": (
        dict(kind="next_url_loop"),
        {},
        ["repeats a next_url", "stopping instead of looping"],
        2,
    ),
    "resultsCount disagrees forever": (
        dict(kind="results_count_mismatch"),
        {},
        ["resultsCount=6 but carries 5 bars"],
        4,
    ),
    "NOT_AUTHORIZED (403) for dates beyond the plan": (
        dict(kind="status", status_code=403, match_path="/2024-03-04/"),
        {},
        ["HTTP 403", "Your plan doesn't include this data timeframe", "not retried"],
        1,
    ),
}


@pytest.mark.parametrize(
    ("fault", "overrides", "expected", "attempts"), PERSISTENT.values(), ids=PERSISTENT.keys()
)
def test_persistent_fault_fails_clearly_and_writes_nothing_for_that_symbol(
    sim, database_url, fault, overrides, expected, attempts
):
    track(database_url, SYMBOLS)
    before = _seed(sim, database_url)
    # The vendor revises every bar, so any row the faulted run wrote would show.
    sim.configure(revision=1, revision_from=START)
    sim.add_fault(ticker="AAPL", **fault)

    result = _run(make_polygon(sim, **overrides), database_url)

    assert not result.success
    after = _stored(database_url)
    # AAPL: untouched. MSFT: revised (one bad symbol never blocks the others).
    assert after.filter(pl.col("symbol") == "AAPL").equals(
        before.filter(pl.col("symbol") == "AAPL")
    )
    msft_before = before.filter(pl.col("symbol") == "MSFT")
    msft_after = after.filter(pl.col("symbol") == "MSFT")
    assert msft_after.select("symbol", "day").equals(msft_before.select("symbol", "day"))
    assert not msft_after.equals(msft_before)
    # The error: specific, on the symbol's row, in the failed check, never the key.
    status = symbol_status(database_url)
    assert status["MSFT"] == ("ok", None)
    state, message = status["AAPL"]
    assert state == "error"
    for text in ["AAPL", WINDOW, *expected]:
        assert text in message, (text, message)
    assert TEST_API_KEY not in message
    check = check_evaluations(result)[f"{ASSET}:symbols_fetched"]
    assert not check.passed
    assert check.metadata["errors"].value == {"AAPL": message}
    assert _fired(sim) == attempts
    _drain(sim)


def test_unknown_key_fails_every_symbol_without_retrying_or_writing(sim, database_url):
    track(database_url, SYMBOLS)
    before = _seed(sim, database_url)
    sim.configure(revision=1, revision_from=START)
    polygon = make_polygon(sim, api_key="sk-wrong-key", max_concurrent_requests=1)
    result = _run(polygon, database_url)
    assert not result.success
    assert _stored(database_url).equals(before)
    status = symbol_status(database_url)
    for symbol, (state, message) in status.items():
        assert state == "error"
        assert symbol in message and WINDOW in message
        assert "HTTP 401 Unknown API Key" in message and "check POLYGON_API_KEY" in message
        assert "sk-wrong-key" not in message
    assert "not requested: the API key was refused" in status["MSFT"][1]
    # A refused key is not retried, and the remaining symbols are not even tried.
    assert sim.stats()["requests"] == 1


def test_grouped_plan_with_a_failing_day_fails_every_symbol_and_writes_nothing(sim, database_url):
    # Many symbols over two days: grouped daily is the cheaper plan (2 requests, not 30).
    from polygon_simulator.market import stock_universe

    symbols = [s for s in stock_universe(60) if "." not in s][:30]
    track(database_url, symbols)
    start, end = dt.date(2024, 3, 4), dt.date(2024, 3, 5)
    resources = _resources(make_polygon(sim), database_url)
    assert materialise(start, end, resources, assets=[stock_daily_candles]).success
    before = read_table(database_url, ASSET)
    assert before.height == 60
    sim.reset()
    sim.configure(revision=1)
    sim.add_fault(kind="status", status_code=503, body="html", match_path="/2024-03-05")
    result = materialise(start, end, resources, assets=[stock_daily_candles])
    assert not result.success
    # A missing day would delete that day's rows for everyone: nothing is replaced instead.
    assert read_table(database_url, ASSET).equals(before)
    states = symbol_status(database_url)
    assert {s for s, _ in states.values()} == {"error"}
    assert all(
        "grouped daily" in m and "2024-03-05" in m and "HTTP 503" in m for _, m in states.values()
    )


def test_an_empty_answer_never_deletes_stored_rows(sim, database_url):
    """A 200 with no bars (Polygon has served transient empty results under load) for a window
    that holds stored rows: the rows are kept and the symbol is reported, not emptied."""
    track(database_url, SYMBOLS)
    before = _seed(sim, database_url)
    # The simulator has no bars from `today` on: empty answers (asking past today is allowed
    # here, where the real API would answer 403 for the future).
    sim.configure(today=START, refuse_future=False)
    result = _run(make_polygon(sim), database_url)
    assert not result.success
    assert _stored(database_url).equals(before)
    for symbol, (state, message) in symbol_status(database_url).items():
        assert state == "error"
        assert f"{symbol} {WINDOW}: the API answered with no bars, but 5 rows are stored" in message


def test_an_empty_answer_for_a_window_with_no_stored_rows_is_a_success(sim, database_url):
    track(database_url, SYMBOLS)
    sim.configure(today=START, refuse_future=False)
    result = _run(make_polygon(sim), database_url)
    assert result.success  # nothing stored, nothing returned: nothing to protect
    assert _stored(database_url).height == 0
    # The gap is not silent: the completeness check reports the missing sessions.
    assert not check_evaluations(result)[f"{ASSET}:completeness"].passed
