"""`stock_daily_returns_stored`: the stored returns equal the reference view after every kind of
change (new days, older days filled in, a split learned and repaired, a dividend learned late),
through real Dagster runs of the assets on the real store and the simulator."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest

from marketdata_pipeline import read
from marketdata_pipeline.definitions import defs
from marketdata_pipeline.defs.candles.jobs import STOCK_CANDLES_JOB
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.returns import RETURN_COLUMNS
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import parse_symbols
from marketdata_pipeline_tests.helpers import (
    materialise,
    query,
    reference_reads_age,
    stock_daily_candles,
    stock_daily_returns_stored,
    stock_dividends,
    stock_split_adjustments,
    stock_splits,
)
from marketdata_pipeline_tests.lib.postgres.test_day_index import nodes, plan

STOCK_RUN = [
    stock_daily_candles,
    stock_splits,
    stock_split_adjustments,
    stock_dividends,
    stock_daily_returns_stored,
]
SYMBOLS = {"stock_daily_candles": ["NVDA", "AAPL", "MSFT"]}


def rows(database_url: str, relation: str) -> pl.DataFrame:
    columns = ", ".join(RETURN_COLUMNS)
    found = query(database_url, f"SELECT {columns} FROM marketdata.{relation} ORDER BY symbol, day")
    return pl.DataFrame(found, schema=list(RETURN_COLUMNS), orient="row")


def assert_table_equals_view(database_url: str) -> pl.DataFrame:
    stored, view = (
        rows(database_url, "stock_daily_returns_stored"),
        rows(database_url, "stock_daily_returns"),
    )
    assert stored.select("symbol", "day", "prev_day").equals(
        view.select("symbol", "day", "prev_day")
    )
    for column in RETURN_COLUMNS[3:]:
        # The same arithmetic on the same rows; only the order of a product of split ratios
        # may differ, in the last bit.
        assert stored[column].to_list() == pytest.approx(view[column].to_list(), rel=1e-14), column
    return stored


@pytest.fixture
def tracked(sim, database_url) -> str:
    sim.configure(integer_stock_volume=False)
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, parse_symbols(SYMBOLS["stock_daily_candles"], "stock"))
    return database_url


def test_the_table_follows_new_days_and_older_days_filled_in(resources, tracked):
    assert materialise(dt.date(2024, 4, 1), dt.date(2024, 4, 30), resources, assets=STOCK_RUN,
                       symbols=SYMBOLS).success  # fmt: skip
    first = assert_table_equals_view(tracked)
    assert first.height == 3 * (22 - 1)  # 22 sessions in April 2024
    # March after April: April's first return now has a previous bar (the next-bar rule).
    assert materialise(dt.date(2024, 3, 1), dt.date(2024, 3, 28), resources, assets=STOCK_RUN,
                       symbols=SYMBOLS).success  # fmt: skip
    both = assert_table_equals_view(tracked)
    assert both.filter(pl.col("day") == dt.date(2024, 4, 1)).height == 3
    # A day's rerun rewrites the same rows.
    assert materialise(dt.date(2024, 4, 10), dt.date(2024, 4, 10), resources, assets=STOCK_RUN,
                       symbols=SYMBOLS).success  # fmt: skip
    assert assert_table_equals_view(tracked).equals(both)


def test_a_split_and_a_late_dividend_rewrite_the_history_they_change(sim, resources, tracked):
    sim.configure(
        dividends=[{"ticker": "NVDA", "ex_dividend_date": "2024-03-15", "cash_amount": 2.0}]
    )
    assert materialise(dt.date(2024, 3, 1), dt.date(2024, 4, 30), resources, assets=STOCK_RUN,
                       symbols=SYMBOLS).success  # fmt: skip
    before = assert_table_equals_view(tracked)
    ex_date = pl.col("day") == dt.date(2024, 3, 15)
    assert before.filter(ex_date & (pl.col("symbol") == "NVDA"))["dividend_adjusted"].item() == 2.0

    # A 4-for-1 split learned with May's days: the repair re-fetches March and April, and the
    # March dividend is 0.50 a share on today's basis; the returns outside the window follow.
    sim.configure(splits=[{"ticker": "NVDA", "execution_date": "2024-05-01", "split_from": 1,
                           "split_to": 4}])  # fmt: skip
    reference_reads_age(tracked)  # the split is learned on the next day's read
    result = materialise(
        dt.date(2024, 5, 1), dt.date(2024, 5, 10), resources, assets=STOCK_RUN, symbols=SYMBOLS
    )
    assert result.success
    after = assert_table_equals_view(tracked)
    nvda_ex = after.filter(ex_date & (pl.col("symbol") == "NVDA"))
    assert nvda_ex["dividend_adjusted"].item() == pytest.approx(0.5)
    events = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "stock_daily_returns_stored"
    ]
    event = events[-1]  # one per partition of the range, with the run's metadata
    assert event.materialization.metadata["histories_rewritten"].value == 1

    # A dividend the vendor adds later for an old ex-date (read by a refresh over that span).
    sim.configure(
        dividends=[
            {"ticker": "NVDA", "ex_dividend_date": "2024-03-15", "cash_amount": 2.0},
            {"ticker": "AAPL", "ex_dividend_date": "2024-04-12", "cash_amount": 0.25},
        ]
    )
    assert materialise(
        dt.date(2024, 5, 10), dt.date(2024, 5, 10), resources, assets=STOCK_RUN,
        symbols=SYMBOLS, config={"stock_dividends": {"start": "2024-03-01"}},
    ).success  # fmt: skip
    late = assert_table_equals_view(tracked)
    aapl = late.filter((pl.col("symbol") == "AAPL") & (pl.col("day") == dt.date(2024, 4, 12)))
    assert aapl["dividend"].item() == 0.25
    assert aapl["total_return"].item() > aapl["simple_return"].item()
    # The reader's returns are the table's rows.
    frame = read.returns(start="2024-03-01", end="2024-05-10", url=tracked)
    assert frame.height == late.height
    assert frame["total_return"].to_list() == late["total_return"].to_list()


def test_every_stock_run_of_the_code_location_maintains_the_table():
    job = defs.resolve_job_def(STOCK_CANDLES_JOB)
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert "stock_daily_returns_stored" in keys
    deps = defs.get_assets_def("stock_daily_returns_stored").asset_deps
    (upstream,) = deps.values()
    assert {k.to_user_string() for k in upstream} == {
        "stock_daily_candles",
        "stock_split_adjustments",
        "stock_dividends",
    }


def test_migration_7_fills_the_table_from_the_view_for_an_existing_store(resources, tracked):
    assert materialise(dt.date(2024, 4, 1), dt.date(2024, 4, 30), resources,
                       assets=[stock_daily_candles], symbols=SYMBOLS).success  # fmt: skip
    with psycopg.connect(tracked) as conn:
        conn.execute("DROP TABLE marketdata.stock_daily_returns_stored")
        conn.execute("DROP TABLE marketdata.stock_daily_returns_state")
        conn.execute("DELETE FROM marketdata.schema_migrations WHERE version = 7")
        conn.commit()
        assert 7 in migrate(conn)
    assert assert_table_equals_view(tracked).height == 3 * 21


def test_one_days_returns_across_the_market_read_the_day_index(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO marketdata.stock_daily_returns_stored"
            " SELECT 'S' || s, d::date, d::date - 1, 10, 10.1, 0, 0, 0.01, 0.01"
            " FROM generate_series(1, 2000) s,"
            " generate_series('2024-01-02'::date, '2024-12-31', '1 day') d ORDER BY 1, 2"
        )
        conn.execute("ANALYZE marketdata.stock_daily_returns_stored")
        # The statement `read.returns` sends for one day.
        day = dt.date(2024, 6, 3)
        found = plan(conn, read.returns_query(day, day), analyze=True)
    kinds = {(n["Node Type"], n.get("Index Name")) for n in nodes(found["Plan"])}
    assert not [k for k in kinds if k[0] == "Seq Scan"], kinds
    assert any(k[1] == "stock_daily_returns_stored_day" for k in kinds), kinds
    root = found["Plan"]
    assert root["Actual Rows"] == 2000
    assert (root["Shared Hit Blocks"] + root["Shared Read Blocks"]) / root["Actual Rows"] <= 1.5


def _returns_metadata(result) -> dict:
    (*_, event) = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "stock_daily_returns_stored"
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_a_dividend_read_again_unchanged_rewrites_nothing_and_a_changed_one_its_ex_date(
    sim, resources, tracked
):
    nvda = {"ticker": "NVDA", "ex_dividend_date": "2024-03-15", "cash_amount": 2.0}
    sim.configure(dividends=[nvda])
    assert materialise(dt.date(2024, 3, 1), dt.date(2024, 4, 30), resources, assets=STOCK_RUN,
                       symbols=SYMBOLS).success  # fmt: skip
    # The next day: the reads on record and the returns' last refresh are a day older, the
    # dividend's fetch two (older than the refresh's one-hour overlap reaches).
    reference_reads_age(tracked)
    with psycopg.connect(tracked) as conn:
        conn.execute(
            "UPDATE marketdata.stock_dividends SET fetched_at = fetched_at - interval '2 days'"
        )
        conn.execute(
            "UPDATE marketdata.stock_daily_returns_state"
            " SET events_through = events_through - interval '1 day'"
        )
    (fetched,) = query(tracked, "SELECT fetched_at FROM marketdata.stock_dividends")[0]
    again = {"stock_dividends": {"start": "2024-03-01"}}  # re-reads the dividend's ex-date
    result = materialise(dt.date(2024, 4, 30), dt.date(2024, 4, 30), resources, assets=STOCK_RUN,
                         symbols=SYMBOLS, config=again)  # fmt: skip
    assert result.success
    assert _returns_metadata(result)["dividend_days"] == 0
    assert query(tracked, "SELECT fetched_at FROM marketdata.stock_dividends")[0][0] == fetched
    # The vendor corrects the record (its pay date; the simulator's ids follow the amount):
    # that record is updated, and only its ex-date's return is rewritten.
    sim.configure(dividends=[{**nvda, "pay_date": "2024-04-02"}])
    reference_reads_age(tracked)
    result = materialise(dt.date(2024, 4, 30), dt.date(2024, 4, 30), resources, assets=STOCK_RUN,
                         symbols=SYMBOLS, config=again)  # fmt: skip
    assert result.success
    assert _returns_metadata(result)["dividend_days"] == 1
    ((changed, pay_date),) = query(
        tracked, "SELECT fetched_at, pay_date FROM marketdata.stock_dividends"
    )
    assert changed > fetched and pay_date == dt.date(2024, 4, 2)
    after = assert_table_equals_view(tracked)
    ex_day = after.filter((pl.col("symbol") == "NVDA") & (pl.col("day") == dt.date(2024, 3, 15)))
    assert ex_day["dividend"].item() == 2.0
