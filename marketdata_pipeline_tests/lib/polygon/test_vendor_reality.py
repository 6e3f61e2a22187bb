"""What a production user meets in the first week, against the simulator and a real Postgres.

Case-sensitive tickers, every timestamp convention the vendor has used, the plan's history
window (403 NOT_AUTHORIZED and `POLYGON_HISTORY_START`), 413 and 504 bursts, reversed ranges.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from marketdata_pipeline.backfill_request import validate_range
from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import ConfigError, InputError
from marketdata_pipeline.lib.polygon.errors import PolygonPlanError, PolygonRequestError
from marketdata_pipeline.lib.polygon.planner import plan_requests
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import connect
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol, parse_symbols
from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    crypto_daily_candles,
    materialise,
    query,
    read_table,
    stock_daily_candles,
)
from marketdata_pipeline_tests.resources import fetch_candles, make_polygon
from polygon_simulator.faults import NOT_AUTHORIZED_MESSAGE

NY = ZoneInfo("America/New_York")
START, END = dt.date(2024, 5, 28), dt.date(2024, 6, 7)
SWITCH = dt.date(2024, 6, 3)


def resources_with(sim, database, **polygon) -> dict:
    """The candle assets' resources, with PolygonResource overrides."""
    return {
        "polygon": make_polygon(sim, **polygon),
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }


def ny_ms(day: dt.date, hour: int) -> int:
    return int(dt.datetime.combine(day, dt.time(hour), tzinfo=NY).timestamp()) * 1000


def utc_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp()) * 1000


def requested_froms(sim) -> list[str]:
    """The `from` date (range) or day (grouped) of every request the simulator saw."""
    out = []
    for entry in sim.stats()["log"]:
        parts = entry["path"].split("/")
        out.append(parts[-2] if entry["kind"] == "range" else parts[-1])
    return out


# --- tickers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["range", "grouped"])
def test_a_lower_case_share_class_is_fetched_and_stored_as_the_vendor_spells_it(
    sim, database, database_url, strategy
):
    with connect(database_url) as conn:
        add_symbols(conn, parse_symbols(["KIMpL", "aapl"]))
    resources = resources_with(sim, database)
    result = materialise(
        START,
        END,
        resources,
        assets=[stock_daily_candles],
        config={"stock_daily_candles": {"strategy": strategy}},
    )
    assert result.success
    stored = read_table(database_url, "stock_daily_candles")
    sessions = stock_sessions(START, END)
    assert stored.group_by("symbol").len().sort("symbol").rows() == [
        ("AAPL", len(sessions)),
        ("KIMpL", len(sessions)),
    ]
    if strategy == "range":
        candles = [e for e in sim.stats()["log"] if e["kind"] == "range"]
        assert {e["ticker"] for e in candles} == {"AAPL", "KIMpL"}
    assert query(
        database_url, "SELECT symbol, status FROM marketdata.tracked_symbols ORDER BY symbol"
    ) == [("AAPL", "ok"), ("KIMpL", "ok")]


def test_the_upper_cased_ticker_is_another_ticker_with_no_bars(sim, polygon):
    frame = fetch_candles(
        polygon, AssetClass.STOCK, [parse_symbol("KIMPL")], CandleWindow(START, END)
    ).frame
    assert frame.height == 0
    assert sim.stats()["log"][0]["ticker"] == "KIMPL"


# --- timestamp conventions ----------------------------------------------------------------------


def test_every_timestamp_era_lands_on_the_same_days_with_vendor_t_kept(
    sim, resources, database_url
):
    symbols = {"stock_daily_candles": ["AAPL"], "crypto_daily_candles": ["BTCUSD"]}
    assert materialise(START, END, resources, symbols=symbols).success
    modern = {
        t: read_table(database_url, t) for t in ("stock_daily_candles", "crypto_daily_candles")
    }
    # Older history: stock range bars at the 16:00 close, crypto at New York midnight.
    sim.configure(stock_close_stamp_before=SWITCH, crypto_ny_midnight_before=SWITCH)
    result = materialise(START, END, resources, symbols=symbols)
    assert result.success
    checks = check_evaluations(result)
    for asset in modern:
        assert checks[f"{asset}:rows_quarantined"].passed
        assert checks[f"{asset}:completeness"].passed
    assert query(database_url, "SELECT count(*) FROM marketdata.rejected_candles") == [(0,)]
    provenance = ["fetched_at", "vendor_t"]
    for table, before in modern.items():
        after = read_table(database_url, table)
        assert after.drop(provenance).equals(before.drop(provenance)), table
    stocks = read_table(database_url, "stock_daily_candles")
    assert stocks.select("day", "vendor_t").rows() == [
        (d, ny_ms(d, 16) if d < SWITCH else ny_ms(d, 0)) for d in stock_sessions(START, END)
    ]
    crypto = read_table(database_url, "crypto_daily_candles")
    days = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
    assert crypto.select("day", "vendor_t").rows() == [
        (d, ny_ms(d, 0) if d < SWITCH else utc_ms(d)) for d in days
    ]
    # ts stays the start of the day in the market's zone whatever the vendor's stamp.
    assert crypto.get_column("ts").dt.hour().unique().to_list() == [0]


# --- the plan's history window ------------------------------------------------------------------


def test_a_plan_refusal_names_the_window_is_never_retried_and_others_continue(
    sim, resources, database_url
):
    with connect(database_url) as conn:
        add_symbols(conn, parse_symbols(["AAPL", "MSFT"]))
    sim.add_fault(kind="status", status_code=403, ticker="MSFT", message=NOT_AUTHORIZED_MESSAGE)
    result = materialise(START, END, resources, assets=[stock_daily_candles])
    assert not result.success  # a failed symbol shows on the run
    stored = read_table(database_url, "stock_daily_candles")
    assert stored.get_column("symbol").unique().to_list() == ["AAPL"]
    msft = [e for e in sim.stats()["log"] if e["ticker"] == "MSFT" and e["kind"] == "range"]
    assert [e["status"] for e in msft] == [403]  # not retried
    ((status, error),) = query(
        database_url,
        "SELECT status, last_error FROM marketdata.tracked_symbols WHERE symbol = 'MSFT'",
    )
    assert status == "error"
    assert "does not include that data timeframe (the days 2024-05-28 to 2024-06-07)" in error
    assert "POLYGON_HISTORY_START" in error and "not retried" in error


def test_history_start_keeps_requests_inside_the_plan_and_older_rows_stored(
    sim, database, database_url
):
    symbols = {"stock_daily_candles": ["AAPL"]}
    assets = [stock_daily_candles]
    unlimited = resources_with(sim, database)
    assert materialise(START, END, unlimited, assets=assets, symbols=symbols).success
    before = read_table(database_url, "stock_daily_candles")

    # The plan now serves only from SWITCH on: without the setting, the API refuses the run.
    sim.reset(history_start=SWITCH)
    assert not materialise(START, END, unlimited, assets=assets, symbols=symbols).success
    assert [e["status"] for e in sim.stats()["log"]] == [403]
    assert read_table(database_url, "stock_daily_candles").equals(before)

    for strategy in ("range", "grouped"):
        sim.reset()
        limited = resources_with(sim, database, history_start=SWITCH.isoformat())
        config = {"stock_daily_candles": {"strategy": strategy}}
        result = materialise(START, END, limited, assets=assets, symbols=symbols, config=config)
        assert result.success, strategy
        assert min(requested_froms(sim)) == SWITCH.isoformat()
        assert sim.stats()["by_status"] == {"200": len(sim.stats()["log"])}
        after = read_table(database_url, "stock_daily_candles")
        # Days the plan does not serve keep the rows stored earlier, untouched.
        old = pl.col("day") < SWITCH
        assert after.filter(old).equals(before.filter(old))
        assert after.filter(~old).height == len(stock_sessions(SWITCH, END))


def test_a_refused_grouped_day_fails_the_run_without_spending_on_the_rest(sim, database):
    sim.configure(history_start=dt.date(2024, 6, 5))
    polygon = make_polygon(sim, max_concurrent_requests=1)
    result = fetch_candles(
        polygon,
        AssetClass.STOCK,
        [parse_symbol("AAPL")],
        CandleWindow(START, END),
        force_strategy="grouped",
    )
    assert result.frame.height == 0 and result.fetched == []
    assert "the day 2024-05-28" in result.errors["AAPL"]
    assert sim.stats()["requests"] == 1  # the first refusal stops the queued days


def test_the_planner_never_plans_days_before_the_history_start():
    aapl = [parse_symbol("AAPL")]
    plan = plan_requests(AssetClass.STOCK, aapl, START, END, history_start=SWITCH)
    assert plan.days == tuple(stock_sessions(SWITCH, END))
    assert plan.unserved_days == tuple(stock_sessions(START, dt.date(2024, 5, 31)))
    assert plan.range_window == (SWITCH, END) and plan.cost == 1
    assert "4 trading days 2024-05-28..2024-05-31 not requested" in plan.describe()
    assert plan.as_metadata()["unserved_days"] == 4
    nothing = plan_requests(AssetClass.CRYPTO, aapl, START, END, history_start=dt.date(2025, 1, 1))
    assert nothing.strategy == "none" and nothing.cost == 0 and len(nothing.unserved_days) == 11


def test_history_start_setting_and_the_backfill_refusal():
    assert load_settings({"POLYGON_HISTORY_START": "2024-06-03"}).history_start == SWITCH
    assert load_settings({}).history_start is None
    with pytest.raises(ConfigError, match="POLYGON_HISTORY_START '06/03/2024' is not a date"):
        load_settings({"POLYGON_HISTORY_START": "06/03/2024"})
    with pytest.raises(InputError, match="--start 2024-05-28 is before POLYGON_HISTORY_START"):
        validate_range("2024-05-28", "2024-06-07", first=dt.date(2024, 1, 1), history_start=SWITCH)
    assert validate_range(
        "2024-06-03", "2024-06-07", first=dt.date(2024, 1, 1), history_start=SWITCH
    ) == CandleWindow(SWITCH, END)
    with pytest.raises(ConfigError, match=r"PolygonResource\.history_start 'June' is not a date"):
        PolygonResource(api_key="k", history_start="June").history_start_date()


# --- errors the client meets --------------------------------------------------------------------


def test_413_and_bursts_of_504_html_are_retried(sim):
    sim.add_fault(kind="status", status_code=413, times=1)
    sim.add_fault(kind="status", status_code=504, body="html", times=3)
    frame = (
        make_polygon(sim, max_attempts=6).get_client().fetch_range(parse_symbol("AAPL"), START, END)
    )
    assert frame.height == len(stock_sessions(START, END))
    assert [e["status"] for e in sim.stats()["log"]] == [413, 504, 504, 504, 200]


def test_a_reversed_range_is_never_sent(sim, polygon):
    with pytest.raises(PolygonRequestError, match="the end 2024-05-28 is before the start"):
        polygon.get_client().fetch_range(parse_symbol("AAPL"), END, START)
    assert sim.stats()["requests"] == 0


def test_plan_refusal_from_the_simulator_is_a_plan_error(sim, polygon):
    sim.configure(history_start=SWITCH)
    with pytest.raises(PolygonPlanError) as info:
        polygon.get_client().fetch_range(parse_symbol("X:BTCUSD"), START, END)
    assert info.value.window == (START, END) and info.value.status_code == 403
    assert "BTCUSD (crypto) 2024-05-28..2024-06-07" in str(info.value)
    assert sim.stats()["requests"] == 1


def test_crypto_asset_with_history_start_runs_clean(sim, database, database_url):
    resources = resources_with(sim, database, history_start=SWITCH.isoformat())
    sim.configure(history_start=SWITCH)
    symbols = {"crypto_daily_candles": ["BTCUSD"]}
    result = materialise(START, END, resources, assets=[crypto_daily_candles], symbols=symbols)
    assert result.success
    assert read_table(database_url, "crypto_daily_candles").get_column("day").min() == SWITCH
