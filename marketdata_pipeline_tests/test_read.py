"""`marketdata_pipeline.read` against the real store: rows written by real Dagster runs from the
simulator, read back through ADBC and compared with plain SQL (psycopg) and the vendor's bars."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest

from marketdata_pipeline import read
from marketdata_pipeline.lib.errors import ConfigError, InputError
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import parse_symbols
from marketdata_pipeline_tests.defs.corporate_actions.test_split_history import vendor_bars
from marketdata_pipeline_tests.helpers import (
    crypto_daily_candles,
    materialise,
    query,
    reference_reads_age,
    stock_daily_candles,
    stock_daily_returns_stored,
    stock_dividends,
    stock_split_adjustments,
    stock_splits,
)

WINDOW = (dt.date(2024, 3, 1), dt.date(2024, 4, 30))
STOCKS = ["AAPL", "MSFT", "NVDA"]
#: What a stock run of the code location materialises (the stored returns included).
WITH_ACTIONS = [
    stock_daily_candles,
    stock_splits,
    stock_split_adjustments,
    stock_dividends,
    stock_daily_returns_stored,
]


def sql_frame(database_url: str, statement: str, params: tuple = ()) -> pl.DataFrame:
    """A query's rows through psycopg (row by row: the reference the reader must equal)."""
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        names = [d.name for d in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=names, orient="row", infer_schema_length=None)


def stored_bars(database_url: str, table: str, where: str = "true", params: tuple = ()):
    columns = ", ".join(read.BAR_SCHEMA)
    frame = sql_frame(
        database_url,
        f"SELECT {columns} FROM marketdata.{table} WHERE {where} ORDER BY symbol, day",
        params,
    )
    # psycopg gives timestamptz in the session zone: compare instants in UTC.
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC")).cast(read.BAR_SCHEMA)


@pytest.fixture
def stored(sim, resources, database_url) -> str:
    """Three stocks and one crypto pair over WINDOW, written by the candle assets."""
    sim.configure(integer_stock_volume=False)
    result = materialise(
        *WINDOW,
        resources,
        assets=[stock_daily_candles, crypto_daily_candles],
        symbols={"stock_daily_candles": STOCKS, "crypto_daily_candles": ["BTCUSD"]},
    )
    assert result.success
    return database_url


def test_candles_are_exactly_the_stored_rows_with_the_documented_types(stored):
    everything = read.candles(start=WINDOW[0], end=WINDOW[1], url=stored)
    assert everything.schema == pl.Schema(read.BAR_SCHEMA)
    assert everything.equals(stored_bars(stored, "stock_daily_candles"))
    assert everything.get_column("symbol").unique().sort().to_list() == STOCKS

    # A symbol list, ISO dates, an inclusive window inside the stored one.
    some = read.candles(["msft", "AAPL"], start="2024-03-11", end="2024-03-15", url=stored)
    expected = stored_bars(
        stored,
        "stock_daily_candles",
        "symbol = ANY(%s) AND day BETWEEN %s AND %s",
        (["AAPL", "MSFT"], dt.date(2024, 3, 11), dt.date(2024, 3, 15)),
    )
    assert some.equals(expected)
    assert some.height == 2 * 5

    crypto = read.candles(
        "X:BTCUSD", start=WINDOW[0], end=WINDOW[1], asset_class="crypto", url=stored
    )
    assert crypto.equals(stored_bars(stored, "crypto_daily_candles"))
    assert crypto.height == (WINDOW[1] - WINDOW[0]).days + 1
    assert crypto.get_column("volume").dtype == pl.Float64()


def test_cross_section_is_one_row_per_symbol_of_that_day(stored):
    day = read.cross_section("2024-04-12", url=stored)
    assert day.get_column("symbol").to_list() == STOCKS
    assert day.equals(
        stored_bars(stored, "stock_daily_candles", "day = %s", (dt.date(2024, 4, 12),))
    )
    # A weekend has no stock bars; crypto trades every day.
    assert read.cross_section(dt.date(2024, 4, 13), url=stored).height == 0
    crypto = read.cross_section("2024-04-13", asset_class="crypto", url=stored)
    assert crypto.get_column("symbol").to_list() == ["BTCUSD"]


def test_batches_add_up_to_one_read_in_order(stored):
    whole = read.candles(start=WINDOW[0], end=WINDOW[1], url=stored)
    batches = list(read.candle_batches(start=WINDOW[0], end=WINDOW[1], rows=50, url=stored))
    assert [b.height for b in batches[:-1]] == [50] * (len(batches) - 1)
    assert 0 < batches[-1].height <= 50
    assert pl.concat(batches).equals(whole)
    assert all(b.schema == pl.Schema(read.BAR_SCHEMA) for b in batches)


def test_the_store_is_found_like_the_command_line_finds_it(stored, monkeypatch):
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", stored)
    assert read.cross_section("2024-04-12").height == len(STOCKS)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": "2024-13-01", "end": "2024-04-30"}, "start '2024-13-01' is not a date"),
        ({"start": "2024-04-30", "end": "2024-03-01"}, "end 2024-03-01 is before start"),
        ({"start": dt.datetime(2024, 3, 1), "end": "2024-04-30"}, "is a datetime"),
        ({"start": 20240301, "end": "2024-04-30"}, "start 20240301 is not a date"),
        ({"start": "2024-03-01", "end": "2024-04-30", "adjustment": "div"}, "adjustment 'div'"),
        ({"start": "2024-03-01", "end": "2024-04-30", "asset_class": "fx"}, "asset class 'fx'"),
        ({"symbols": ["AAPL", "no way"], "start": "2024-03-01", "end": "2024-04-30"}, "no way"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_it(kwargs, message):
    with pytest.raises(InputError, match=message):
        read.candles(**kwargs, url="postgresql://nowhere.invalid/x")


def test_bad_batch_size_and_bad_urls_are_refused_before_any_read(database_url):
    with pytest.raises(InputError, match="rows 0 must be"):
        read.candle_batches(start="2024-03-01", end="2024-03-01", rows=0, url=database_url)
    with pytest.raises(ConfigError, match="must be a postgresql:// URL"):
        read.candles(start="2024-03-01", end="2024-03-01", url="mysql://x/y")
    with pytest.raises(ConfigError, match=r"cannot connect to Postgres at postgresql://u:\*\*\*@"):
        read.candles(
            start="2024-03-01", end="2024-03-01", url="postgresql://u:secret@127.0.0.1:1/x"
        )


@pytest.fixture
def with_actions(sim, resources, database_url) -> str:
    """NVDA with a 4-for-1 split (2024-05-01) learned after WINDOW was stored, and dividends on
    each side of the split; AAPL without events."""
    sim.configure(integer_stock_volume=False)
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, parse_symbols(["NVDA", "AAPL"], "stock"))
    symbols = {"stock_daily_candles": ["NVDA", "AAPL"]}
    sim.configure(
        dividends=[
            {"ticker": "NVDA", "ex_dividend_date": "2024-03-15", "cash_amount": 2.0},
            {"ticker": "NVDA", "ex_dividend_date": "2024-05-06", "cash_amount": 0.5},
        ]
    )
    assert materialise(*WINDOW, resources, assets=WITH_ACTIONS, symbols=symbols).success
    sim.configure(splits=[{"ticker": "NVDA", "execution_date": "2024-05-01", "split_from": 1,
                           "split_to": 4}])  # fmt: skip
    reference_reads_age(database_url)  # the split is learned on the next day's read
    later = (dt.date(2024, 5, 1), dt.date(2024, 5, 10))
    assert materialise(*later, resources, assets=WITH_ACTIONS, symbols=symbols).success
    return database_url


def test_as_traded_equals_the_vendors_unadjusted_bars(sim, with_actions):
    end = dt.date(2024, 5, 10)
    traded = read.candles("NVDA", start=WINDOW[0], end=end, adjustment="none", url=with_actions)
    vendor = vendor_bars(sim, "NVDA", WINDOW[0], end, adjusted=False)
    assert traded.get_column("day").to_list() == vendor.get_column("day").to_list()
    for column in ("open", "high", "low", "close", "vwap", "volume"):
        assert traded.get_column(column).to_list() == pytest.approx(
            vendor.get_column(column).to_list(), rel=1e-12
        ), column
    # As stored is the split-adjusted series: before the split, a quarter of what traded.
    stored = read.candles("NVDA", start=WINDOW[0], end=WINDOW[1], url=with_actions)
    assert stored.get_column("close").to_list() == pytest.approx(
        [c / 4 for c in traded.filter(pl.col("day") <= WINDOW[1])["close"]], rel=1e-12
    )
    assert traded.equals(
        stored_bars(with_actions, "stock_daily_candles_unadjusted", "symbol = 'NVDA'")
    )


def test_total_return_bars_move_by_the_views_total_return(with_actions):
    bars = read.candles(
        ["NVDA", "AAPL"], start=WINDOW[0], end="2024-05-10", adjustment="total_return",
        url=with_actions,
    )  # fmt: skip
    stored = read.candles(["NVDA", "AAPL"], start=WINDOW[0], end="2024-05-10", url=with_actions)
    view = sql_frame(
        with_actions,
        "SELECT symbol, day, simple_return, total_return FROM marketdata.stock_daily_returns"
        " ORDER BY symbol, day",
    )
    moves = bars.select(
        "symbol", "day", (pl.col("close") / pl.col("close").shift(1).over("symbol") - 1).alias("m")
    ).join(view, on=["symbol", "day"])
    assert moves.height == bars.height - 2  # every bar but each symbol's first has a return
    assert moves["m"].to_list() == pytest.approx(moves["total_return"].to_list(), rel=1e-9)
    # Both dividends count (2.00 before the split is 0.50 a share today); AAPL pays none.
    assert (moves["total_return"] != moves["simple_return"]).sum() == 2
    assert bars.filter(pl.col("symbol") == "AAPL").equals(stored.filter(pl.col("symbol") == "AAPL"))
    # After the last ex-date the bars are the stored ones; before it, scaled down; volume kept.
    after = pl.col("day") >= dt.date(2024, 5, 6)
    assert bars.filter(after).equals(stored.filter(after))
    before = ~after & (pl.col("symbol") == "NVDA")
    assert (bars.filter(before)["close"] < stored.filter(before)["close"]).all()
    assert bars["volume"].equals(stored["volume"])
    # The batch iterator applies the same adjustment.
    batches = read.candle_batches(
        ["NVDA", "AAPL"], start=WINDOW[0], end="2024-05-10", adjustment="total_return",
        rows=17, url=with_actions,
    )  # fmt: skip
    assert pl.concat(list(batches)).equals(bars)


def test_returns_are_the_views_rows(with_actions):
    frame = read.returns(start=WINDOW[0], end="2024-05-10", url=with_actions)
    assert frame.schema == pl.Schema(read.RETURNS_SCHEMA)
    view = sql_frame(
        with_actions,
        f"SELECT {', '.join(read.RETURNS_SCHEMA)} FROM marketdata.stock_daily_returns"
        " ORDER BY symbol, day",
    ).cast(read.RETURNS_SCHEMA)
    assert frame.equals(view)
    (count,) = query(with_actions, "SELECT count(*) FROM marketdata.stock_daily_returns")
    assert frame.height == count[0]


def test_a_kept_connection_the_server_dropped_is_replaced(stored):
    """The reader keeps its connection between calls (connecting costs more than a
    cross-section); one the server closed meanwhile is noticed and replaced."""
    assert read.cross_section("2024-04-12", url=stored).height == len(STOCKS)
    (killed,) = query(
        stored,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert killed[0] >= 1
    assert read.cross_section("2024-04-12", url=stored).height == len(STOCKS)
