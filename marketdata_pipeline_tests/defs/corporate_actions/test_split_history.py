"""Split-adjusted history stays true: real Postgres, the simulator over HTTP, Dagster runs.

The simulator makes a split "happen" when it is configured: from then on its adjusted bars
before the execution date are rescaled, as the vendor's are. These tests check that the store
follows: older history equals the vendor's adjusted bars, as-traded prices stay what traded,
other symbols are untouched, and a rerun costs nothing.
"""

from __future__ import annotations

import datetime as dt
import os

import dagster as dg
import httpx
import polars as pl
import psycopg
import pytest

from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import parse_symbols
from marketdata_pipeline_tests.conftest import make_polygon
from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    mark_identified,
    materialise,
    query,
    read_table,
    reference_reads_age,
    stock_daily_candles,
    stock_dividends,
    stock_split_adjustments,
    stock_splits,
)

PRICES = ["open", "high", "low", "close", "vwap"]
BARS = [*PRICES, "volume"]
HISTORY = (dt.date(2024, 3, 1), dt.date(2024, 5, 31))
WITH_SPLITS = [stock_daily_candles, stock_splits, stock_split_adjustments]
REFRESH = [stock_splits, stock_split_adjustments]


@pytest.fixture(autouse=True)
def fractional_stock_volume(sim):
    """The vendor writes whole shares; fractional volume here keeps the split arithmetic exact
    (prices x ratio, volume / ratio) comparable to the last digit."""
    sim.configure(integer_stock_volume=False)


def track(database_url: str, *symbols: str) -> None:
    """Track `symbols`, as a store that identified them before (their candle requests alone
    are counted here)."""
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, parse_symbols(list(symbols), "stock"))
    mark_identified(database_url, list(symbols))


def vendor_bars(sim, symbol: str, start: dt.date, end: dt.date, *, adjusted: bool) -> pl.DataFrame:
    """The simulator's bars as the API serves them now (not counted as pipeline requests)."""
    response = httpx.get(
        f"{sim.base_url}/v2/aggs/ticker/{symbol}/range/1/day/{start}/{end}",
        params={"adjusted": str(adjusted).lower(), "limit": 50000},
        headers={"Authorization": f"Bearer {sim.api_key}"},
    )
    response.raise_for_status()
    rows = response.json()["results"]
    return pl.DataFrame(
        {
            "day": [
                dt.datetime.fromtimestamp(r["t"] / 1000, dt.UTC).date() for r in rows
            ],  # 00:00 New York is 04:00/05:00 UTC: the same date
            "open": [r["o"] for r in rows],
            "high": [r["h"] for r in rows],
            "low": [r["l"] for r in rows],
            "close": [r["c"] for r in rows],
            "vwap": [r["vw"] for r in rows],
            "volume": [r["v"] for r in rows],
        }
    )


def stored(database_url: str, symbol: str, table: str = "stock_daily_candles") -> pl.DataFrame:
    rows = query(
        database_url,
        f"SELECT day, open, high, low, close, vwap, volume FROM marketdata.{table}"
        " WHERE symbol = %s ORDER BY day",
        (symbol,),
    )
    return pl.DataFrame(rows, schema=["day", *PRICES, "volume"], orient="row")


def assert_close(actual: pl.DataFrame, expected: pl.DataFrame, rel: float = 1e-12) -> None:
    assert actual.get_column("day").to_list() == expected.get_column("day").to_list()
    for column in BARS:
        assert actual.get_column(column).to_list() == pytest.approx(
            expected.get_column(column).to_list(), rel=rel
        ), column


@pytest.fixture
def cached(sim, resources, tmp_path) -> dict:
    """`resources` with a page cache under tmp_path/pages, as the code location has one."""
    polygon = make_polygon(sim, cache_dir=str(tmp_path / "pages"), fresh_after="2024-12-31")
    return {**resources, "polygon": polygon}


def requests_by_kind(sim) -> dict[str, int]:
    return sim.stats(include_log=False)["by_kind"]


def test_a_split_learned_while_fetching_new_days_repairs_older_history_in_the_same_run(
    sim, resources, database_url
):
    track(database_url, "AAPL", "MSFT")
    symbols = {"stock_daily_candles": ["AAPL", "MSFT"]}
    assert materialise(*HISTORY, resources, assets=WITH_SPLITS, symbols=symbols).success
    aapl_before = stored(database_url, "AAPL")
    msft_before = read_table(database_url, "stock_daily_candles").filter(pl.col("symbol") == "MSFT")

    # AAPL splits 4-for-1 on Monday 2024-06-10; the next day's run fetches the new days.
    sim.configure(splits=[{"ticker": "AAPL", "execution_date": "2024-06-10", "split_from": 1,
                           "split_to": 4}])  # fmt: skip
    sim.reset()  # counters only: the split stays configured
    reference_reads_age(database_url)
    new_days = (dt.date(2024, 6, 3), dt.date(2024, 6, 14))
    result = materialise(*new_days, resources, assets=WITH_SPLITS, symbols=symbols)
    assert result.success
    # Candles: one range request per symbol; splits: one page; repair: one range for AAPL.
    assert requests_by_kind(sim)["range"] == 2 + 1
    assert requests_by_kind(sim)["splits"] == 1

    # The whole stored AAPL history equals the vendor's adjusted bars now.
    assert_close(
        stored(database_url, "AAPL"),
        vendor_bars(sim, "AAPL", HISTORY[0], new_days[1], adjusted=True),
    )
    repaired = stored(database_url, "AAPL").filter(pl.col("day") <= HISTORY[1])
    assert repaired.get_column("close").to_list() == pytest.approx(
        [c / 4 for c in aapl_before.get_column("close")], rel=1e-4
    )
    # As traded: the view gives back the prices of before the split, and the vendor's raw bars.
    as_traded = stored(database_url, "AAPL", "stock_daily_candles_unadjusted")
    assert_close(as_traded.filter(pl.col("day") <= HISTORY[1]), aapl_before)
    assert_close(as_traded, vendor_bars(sim, "AAPL", HISTORY[0], new_days[1], adjusted=False))
    # MSFT's older rows are untouched, to the fetch time.
    after = read_table(database_url, "stock_daily_candles")
    assert after.filter((pl.col("symbol") == "MSFT") & (pl.col("day") <= HISTORY[1])).equals(
        msft_before
    )
    checks = check_evaluations(result)
    assert checks["stock_split_adjustments:history_split_adjusted"].passed
    assert checks["stock_split_adjustments:split_vs_move"].passed
    (applied,) = query(database_url, "SELECT applied_at IS NOT NULL FROM marketdata.stock_splits")
    assert applied == (True,)

    # A rerun of the refresh changes nothing: the same day it costs nothing, the next day
    # only the splits page.
    sim.reset()
    table_before = read_table(database_url, "stock_daily_candles")
    assert materialise(*new_days, resources, assets=REFRESH).success
    assert sim.stats(include_log=False)["requests"] == 0
    reference_reads_age(database_url)
    assert materialise(*new_days, resources, assets=REFRESH).success
    assert read_table(database_url, "stock_daily_candles").equals(table_before)
    assert sim.stats(include_log=False)["requests"] == 1


def test_a_reverse_split_costs_one_page_plus_one_range_request_per_affected_symbol(
    sim, resources, database_url
):
    track(database_url, "NVDA", "MSFT", "AAPL")
    symbols = {"stock_daily_candles": ["NVDA", "MSFT", "AAPL"]}
    assert materialise(*HISTORY, resources, assets=WITH_SPLITS, symbols=symbols).success
    nvda_before = stored(database_url, "NVDA")
    others_before = read_table(database_url, "stock_daily_candles").filter(
        pl.col("symbol") != "NVDA"
    )

    # 1-for-10 reverse split of NVDA, and a split of an untracked ticker (costs nothing).
    sim.configure(
        splits=[
            {"ticker": "NVDA", "execution_date": "2024-06-03", "split_from": 10, "split_to": 1},
            {"ticker": "TSLA", "execution_date": "2024-04-01", "split_from": 1, "split_to": 3},
        ]
    )
    sim.reset()
    reference_reads_age(database_url)  # the next day's refresh learns them
    assert materialise(HISTORY[1], HISTORY[1], resources, assets=REFRESH).success
    assert requests_by_kind(sim) == {"range": 1, "grouped": 0, "splits": 1}
    assert sim.stats(include_log=False)["by_ticker"] == {"NVDA": 1}

    nvda = stored(database_url, "NVDA")
    assert_close(nvda, vendor_bars(sim, "NVDA", *HISTORY, adjusted=True))
    assert nvda.get_column("close").to_list() == pytest.approx(
        [c * 10 for c in nvda_before.get_column("close")], rel=1e-12
    )
    assert nvda.get_column("volume").to_list() == pytest.approx(
        [v / 10 for v in nvda_before.get_column("volume")], rel=1e-12
    )
    assert_close(stored(database_url, "NVDA", "stock_daily_candles_unadjusted"), nvda_before)
    others = read_table(database_url, "stock_daily_candles").filter(pl.col("symbol") != "NVDA")
    assert others.equals(others_before)

    # The first session after the split: the as-traded series steps by 10, the returns do not.
    assert materialise(
        dt.date(2024, 6, 3), dt.date(2024, 6, 7), resources, assets=WITH_SPLITS, symbols=symbols
    ).success
    as_traded = stored(database_url, "NVDA", "stock_daily_candles_unadjusted")
    assert_close(
        as_traded, vendor_bars(sim, "NVDA", HISTORY[0], dt.date(2024, 6, 7), adjusted=False)
    )
    (step,) = query(
        database_url,
        "SELECT simple_return FROM marketdata.stock_daily_returns"
        " WHERE symbol = 'NVDA' AND day = '2024-06-03'",
    )
    assert abs(step[0]) < 0.1


def test_total_return_adds_the_dividend_back_on_the_ex_date_on_the_adjusted_basis(
    sim, resources, database_url
):
    track(database_url, "NVDA")
    sim.configure(
        splits=[{"ticker": "NVDA", "execution_date": "2024-05-01", "split_from": 1,
                 "split_to": 2}],
        dividends=[
            {"ticker": "NVDA", "ex_dividend_date": "2024-04-15", "cash_amount": 1.0},
            {"ticker": "NVDA", "ex_dividend_date": "2024-04-15", "cash_amount": 0.5,
             "distribution_type": "special"},
            {"ticker": "NVDA", "ex_dividend_date": "2024-05-15", "cash_amount": 0.25},
        ],
    )  # fmt: skip
    assets = [*WITH_SPLITS, stock_dividends]
    assert materialise(
        *HISTORY, resources, assets=assets, symbols={"stock_daily_candles": ["NVDA"]}
    ).success
    (count,) = query(database_url, "SELECT count(*) FROM marketdata.stock_dividends")
    assert count == (3,)
    rows = query(
        database_url,
        "SELECT day, prev_close, close, dividend, dividend_adjusted, simple_return, total_return"
        " FROM marketdata.stock_daily_returns WHERE symbol = 'NVDA' ORDER BY day",
    )
    by_day = {r[0]: r for r in rows}
    # Before the 2-for-1 split the 1.50 paid per old share is 0.75 per share today.
    _, prev, close, dividend, adjusted, simple, total = by_day[dt.date(2024, 4, 15)]
    assert (dividend, adjusted) == pytest.approx((1.5, 0.75))
    assert simple == pytest.approx(close / prev - 1)
    assert total == pytest.approx((close + 0.75) / prev - 1)
    _, prev, close, dividend, adjusted, simple, total = by_day[dt.date(2024, 5, 15)]
    assert (dividend, adjusted) == pytest.approx((0.25, 0.25))
    assert total - simple == pytest.approx(0.25 / prev)
    # Split-neutral: the split day's return is an ordinary move, and other days equal.
    assert abs(by_day[dt.date(2024, 5, 1)][5]) < 0.1
    assert sum(1 for r in rows if r[6] != r[5]) == 2


def test_a_split_like_step_without_an_event_is_flagged_and_never_corrected(
    sim, resources, database_url
):
    track(database_url, "AAPL", "MSFT")
    symbols = {"stock_daily_candles": ["AAPL", "MSFT"]}
    assert materialise(*HISTORY, resources, assets=WITH_SPLITS, symbols=symbols).success
    # The vendor's bars halve from 2024-05-01 without a split event (a split it never recorded),
    # and MSFT crashes by half on heavy volume on 2024-05-15.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE marketdata.stock_daily_candles SET open = open / 2, high = high / 2,"
            " low = low / 2, close = close / 2, vwap = vwap / 2, volume = volume * 2"
            " WHERE symbol = 'AAPL' AND day >= '2024-05-01'"
        )
        conn.execute(
            "UPDATE marketdata.stock_daily_candles SET close = close / 2, low = close / 2,"
            " volume = volume * 8 WHERE symbol = 'MSFT' AND day = '2024-05-15'"
        )
    before = read_table(database_url, "stock_daily_candles")
    result = materialise(dt.date(2024, 4, 1), HISTORY[1], resources, assets=REFRESH)
    assert result.success
    check = check_evaluations(result)["stock_split_adjustments:split_vs_move"]
    assert not check.passed
    flagged = check.metadata["flagged"].value
    assert [(f["symbol"], f["day"], f["nearest_split"]) for f in flagged] == [
        ("AAPL", "2024-05-01", "2-for-1")
    ]
    moves = check.metadata["price_moves"].value
    assert [(m["symbol"], m["day"]) for m in moves][:1] == [("MSFT", "2024-05-15")]
    assert read_table(database_url, "stock_daily_candles").equals(before)


def test_a_failed_repair_keeps_the_stored_rows_and_the_next_run_retries_it(
    sim, resources, database_url
):
    track(database_url, "NVDA", "AAPL")
    symbols = {"stock_daily_candles": ["NVDA", "AAPL"]}
    assert materialise(*HISTORY, resources, assets=WITH_SPLITS, symbols=symbols).success
    sim.configure(
        splits=[
            {"ticker": "NVDA", "execution_date": "2024-06-03", "split_from": 1, "split_to": 2},
            {"ticker": "AAPL", "execution_date": "2024-06-03", "split_from": 1, "split_to": 2},
        ]
    )
    sim.add_fault(kind="status", status_code=500, ticker="NVDA")
    reference_reads_age(database_url)  # the next day's refresh learns them
    before = stored(database_url, "NVDA")
    result = materialise(HISTORY[1], HISTORY[1], resources, assets=REFRESH)
    check = check_evaluations(result)["stock_split_adjustments:history_split_adjusted"]
    assert not check.passed and "NVDA" in check.description
    assert not result.success  # a blocking check: the run says the history is not current
    assert stored(database_url, "NVDA").equals(before)  # nothing half-written
    assert_close(stored(database_url, "AAPL"), vendor_bars(sim, "AAPL", *HISTORY, adjusted=True))
    # The as-traded view stays right for the stale rows: they do not reflect the split yet.
    assert_close(stored(database_url, "NVDA", "stock_daily_candles_unadjusted"), before)

    # A second run the same day reads no splits (today's are stored) and retries the repair.
    sim.clear_faults()
    sim.reset()
    assert materialise(HISTORY[1], HISTORY[1], resources, assets=REFRESH).success
    assert requests_by_kind(sim) == {"range": 1, "grouped": 0}
    assert sim.stats(include_log=False)["by_ticker"] == {"NVDA": 1}
    assert_close(stored(database_url, "NVDA"), vendor_bars(sim, "NVDA", *HISTORY, adjusted=True))


def test_dividends_load_each_tracked_history_once_then_only_recent_whole_market_days(
    sim, resources, database_url
):
    recent = (dt.date.today() - dt.timedelta(days=10)).isoformat()
    sim.configure(
        dividends=[
            {"ticker": "AAPL", "ex_dividend_date": "2024-03-15", "cash_amount": 0.24},
            {"ticker": "MSFT", "ex_dividend_date": "2024-03-15", "cash_amount": 0.75},
            {"ticker": "NVDA", "ex_dividend_date": "2024-03-05", "cash_amount": 0.04},
            {"ticker": "MSFT", "ex_dividend_date": recent, "cash_amount": 0.83},
        ]
    )

    def refresh() -> tuple[int, set[tuple[str, str]]]:
        sim.reset()
        result = dg.materialize(
            [stock_dividends], resources=resources, instance=dg.DagsterInstance.ephemeral()
        )
        assert result.success
        rows = query(
            database_url, "SELECT symbol, ex_dividend_date FROM marketdata.stock_dividends"
        )
        return sim.stats(include_log=False)["requests"], {(s, d.isoformat()) for s, d in rows}

    track(database_url, "AAPL")
    # The whole market's recent ex-dates, plus AAPL's history in one query.
    requests, stored_rows = refresh()
    assert requests == 2
    assert stored_rows == {("AAPL", "2024-03-15"), ("MSFT", recent)}
    assert refresh() == (0, stored_rows)  # the same day: nothing to read
    reference_reads_age(database_url)
    assert refresh() == (1, stored_rows)  # the next day: only the recent window again
    track(database_url, "NVDA", "MSFT")
    requests, stored_rows = refresh()
    assert requests == 1  # one query for both new histories, never one per ticker
    assert ("NVDA", "2024-03-05") in stored_rows and ("MSFT", "2024-03-15") in stored_rows
    assert refresh() == (0, stored_rows)


def test_split_vs_move_reads_the_window_a_batch_of_symbols_at_a_time_with_the_same_answer(
    sim, resources, database_url
):
    tickers = ["AAPL", "AMZN", "GOOG", "META", "MSFT", "NVDA", "TSLA"]
    track(database_url, *tickers)
    assert materialise(
        *HISTORY, resources, assets=WITH_SPLITS, symbols={"stock_daily_candles": tickers}
    ).success
    # Split-like steps in the first and the last symbol (first and last batch), and a crash.
    with psycopg.connect(database_url) as conn:
        for symbol, day in (("AAPL", "2024-04-01"), ("TSLA", "2024-05-01")):
            conn.execute(
                "UPDATE marketdata.stock_daily_candles SET open = open / 2, high = high / 2,"
                " low = low / 2, close = close / 2, vwap = vwap / 2, volume = volume * 2"
                " WHERE symbol = %s AND day >= %s",
                (symbol, day),
            )
        conn.execute(
            "UPDATE marketdata.stock_daily_candles SET close = close / 2, low = close / 2,"
            " volume = volume * 8 WHERE symbol = 'MSFT' AND day = '2024-05-15'"
        )

    def check(rows_per_chunk: int | None) -> dg.AssetCheckEvaluation:
        config = {"stock_split_adjustments": {"rows_per_chunk": rows_per_chunk}}
        result = materialise(
            *HISTORY, resources, assets=REFRESH, config=config if rows_per_chunk else None
        )
        assert result.success
        return check_evaluations(result)["stock_split_adjustments:split_vs_move"]

    whole = check(None)  # the default chunk holds the whole window: one read
    # 92 days and 14 looked back: 300 rows hold 2 symbols a read, 4 reads for 7 symbols.
    batched = check(300)
    assert whole.metadata["chunks_read"].value == 1
    assert batched.metadata["chunks_read"].value == 4
    flagged = [(f["symbol"], f["day"]) for f in batched.metadata["flagged"].value]
    assert flagged == [("AAPL", "2024-04-01"), ("TSLA", "2024-05-01")]
    assert ("MSFT", "2024-05-15") in [
        (m["symbol"], m["day"]) for m in batched.metadata["price_moves"].value
    ]
    for name in ("flagged", "price_moves", "possible_unrecorded_splits", "split_events"):
        assert batched.metadata[name] == whole.metadata[name], name
    assert batched.description == whole.description and not batched.passed


def test_a_repair_fetches_fresh_and_forgets_its_pages_so_the_next_repair_is_right(
    sim, cached, database_url, tmp_path
):
    pages, resources = tmp_path / "pages", cached
    polygon = resources["polygon"]
    track(database_url, "AAPL")
    symbols = {"stock_daily_candles": ["AAPL"]}
    assert materialise(*HISTORY, resources, assets=WITH_SPLITS, symbols=symbols).success
    assert not list(pages.rglob("*.page")), "the candles' pages went once committed"
    split = {"ticker": "AAPL", "split_from": 1, "split_to": 2, "execution_date": "2024-06-10"}
    sim.configure(splits=[split])
    assert materialise(*HISTORY, resources, assets=REFRESH).success
    assert not list(pages.rglob("*.page")), "the repair's pages went once committed"

    # A second split, learned on the next day's read (within the cache's age), makes the same
    # span stale again: the repair asks the vendor again (no page of the first repair is
    # served) and stores its bars now.
    sim.configure(splits=[split, {**split, "split_to": 3, "execution_date": "2024-06-12"}])
    reference_reads_age(database_url)
    sim.reset()
    assert materialise(*HISTORY, resources, assets=REFRESH).success
    assert requests_by_kind(sim)["range"] == 1
    assert_close(stored(database_url, "AAPL"), vendor_bars(sim, "AAPL", *HISTORY, adjusted=True))
    assert not list(pages.rglob("*.page"))

    # A page of that span left in the cache (a killed run's) is never read by a repair.
    old = stored(database_url, "AAPL")
    client = polygon.get_client()
    sim.configure(splits=[])  # the cached page predates every split
    client.fetch_range(parse_symbols(["AAPL"], "stock")[0], *HISTORY)
    sim.configure(splits=[split, {**split, "split_to": 3, "execution_date": "2024-06-12"},
                          {**split, "split_to": 5, "execution_date": "2024-06-14"}])  # fmt: skip
    assert list(pages.rglob("*.page"))
    reference_reads_age(database_url)
    sim.reset()
    assert materialise(*HISTORY, resources, assets=REFRESH).success
    assert requests_by_kind(sim)["range"] == 1
    repaired = stored(database_url, "AAPL")
    assert_close(repaired, vendor_bars(sim, "AAPL", *HISTORY, adjusted=True))
    assert repaired.get_column("close").to_list() == pytest.approx(
        [c / 5 for c in old.get_column("close")], rel=1e-9
    )
    assert not list(pages.rglob("*.page")), "and the stale page is gone with the repair's"


def test_bars_served_from_the_page_cache_carry_the_time_the_vendor_sent_them(
    sim, cached, database_url, tmp_path
):
    """A killed run's page, fetched before a split we learned since, is repaired after its
    rerun stores it: its bars are dated when the vendor sent them, not when they were read."""
    pages, resources = tmp_path / "pages", cached
    polygon = resources["polygon"]
    track(database_url, "AAPL")
    # The killed run: its page arrived two days ago, before the split was known.
    polygon.get_client().fetch_range(parse_symbols(["AAPL"], "stock")[0], *HISTORY)
    (page,) = pages.rglob("*.page")
    two_days_ago = page.stat().st_mtime - 2 * 86_400
    os.utime(page, (two_days_ago, two_days_ago))
    split = {"ticker": "AAPL", "split_from": 1, "split_to": 2, "execution_date": "2024-06-10"}
    sim.configure(splits=[split])
    assert materialise(*HISTORY, resources, assets=[stock_splits]).success

    sim.reset()
    symbols = {"stock_daily_candles": ["AAPL"]}
    assert materialise(*HISTORY, resources, assets=[stock_daily_candles], symbols=symbols).success
    assert sim.stats(include_log=False)["requests"] == 0, "the rerun read the kept page"
    (fetched,) = query(
        database_url, "SELECT DISTINCT fetched_at FROM marketdata.stock_daily_candles"
    )
    assert fetched[0].timestamp() == pytest.approx(two_days_ago, abs=1)

    assert materialise(*HISTORY, resources, assets=REFRESH).success
    assert requests_by_kind(sim)["range"] == 1
    assert_close(stored(database_url, "AAPL"), vendor_bars(sim, "AAPL", *HISTORY, adjusted=True))


#: (table, window, symbols) of every write of `RecordingIOManager`, in order.
WRITES: list[tuple[str, str, tuple[str, ...]]] = []


class RecordingIOManager(PostgresCandleIOManager):
    """The production IO manager, noting each write it makes."""

    def store(self, table, batch):
        WRITES.append((table, str(batch.window), batch.symbols))
        return super().store(table, batch)


def test_the_repair_writes_through_the_candle_io_manager(sim, resources, database_url):
    """The repaired span is persisted by the run's `candle_io_manager` (the one persistence
    step of every candle slice), not by a write of its own."""
    track(database_url, "AAPL", "MSFT")
    io_manager = RecordingIOManager(database=resources["database"])
    resources = {**resources, "candle_io_manager": io_manager}
    symbols = {"stock_daily_candles": ["AAPL", "MSFT"]}
    assert materialise(*HISTORY, resources, assets=WITH_SPLITS, symbols=symbols).success
    sim.configure(splits=[{"ticker": "AAPL", "execution_date": "2024-06-10", "split_from": 1,
                           "split_to": 4}])  # fmt: skip
    reference_reads_age(database_url)
    WRITES.clear()
    new_days = (dt.date(2024, 6, 3), dt.date(2024, 6, 14))
    assert materialise(*new_days, resources, assets=WITH_SPLITS, symbols=symbols).success
    # The run's Output, then the repair of AAPL's stale span: both through the IO manager.
    assert WRITES == [
        ("stock_daily_candles", "2024-06-03..2024-06-14", ("AAPL", "MSFT")),
        ("stock_daily_candles", "2024-03-01..2024-06-07", ("AAPL",)),
    ]
    assert_close(
        stored(database_url, "AAPL"),
        vendor_bars(sim, "AAPL", HISTORY[0], new_days[1], adjusted=True),
    )
