"""A store never mixes simulated and real rows, on the paths production takes.

Every run here goes through the code location's own resources (`build_resources` on settings
read from the environment a user would set: a key and `POLYGON_BASE_URL`), the real assets in
Dagster runs, the real IO manager and the real simulator over HTTP. The simulator says it is one
in its answers; with `identify` off it poses as a keyed Polygon server.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.lib.postgres.store import mixed_sources_message
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import parse_symbols
from marketdata_pipeline_tests.helpers import (
    materialise,
    query,
    read_table,
    stock_daily_candles,
    stock_split_adjustments,
    stock_splits,
)

FIRST = (dt.date(2024, 3, 4), dt.date(2024, 3, 8))
SECOND = (dt.date(2024, 3, 11), dt.date(2024, 3, 15))
REPAIR = [stock_splits, stock_split_adjustments]
AAPL_SPLIT = {"ticker": "AAPL", "execution_date": "2024-03-13", "split_from": 1, "split_to": 4}


@pytest.fixture
def keyed_env(sim, database_url, monkeypatch, tmp_path):
    """The environment of a user with a key and POLYGON_BASE_URL pointing at `sim` (a page
    cache and spool of the test's own)."""
    monkeypatch.setenv("POLYGON_API_KEY", sim.api_key)
    monkeypatch.setenv("POLYGON_BASE_URL", sim.base_url)
    monkeypatch.setenv("POLYGON_REQUESTS_PER_MINUTE", "6000")
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKETDATA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MARKETDATA_SPOOL_DIR", str(tmp_path / "spool"))
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, parse_symbols(["AAPL", "X:BTCUSD"]))


def production_resources() -> dict:
    """The resources the code location builds from the environment."""
    return build_resources(load_settings())


def sources(database_url: str, table: str) -> set[str]:
    return {
        row[0] for row in query(database_url, f"SELECT DISTINCT source FROM marketdata.{table}")
    }


def claim(database_url: str) -> list[tuple]:
    return query(database_url, "SELECT value FROM marketdata.store_info WHERE key = 'source'")


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message with its causes (the IO manager's error is a cause)."""
    texts = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error is not None:
            error = event.step_failure_data.error
            while error is not None:
                texts.append(error.message)
                error = error.cause
    return "\n".join(texts)


def stock_run(window, **kwargs) -> dg.ExecuteInProcessResult:
    return materialise(
        *window,
        production_resources(),
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": ["AAPL"]},
        **kwargs,
    )


def test_a_simulator_behind_polygon_base_url_is_labelled_simulator_and_claims_the_store(
    sim, keyed_env, database_url
):
    assert claim(database_url) == []
    runs = materialise(
        *FIRST,
        production_resources(),
        symbols={"stock_daily_candles": ["AAPL"], "crypto_daily_candles": ["BTCUSD"]},
        config={"crypto_daily_candles": {"strategy": "grouped"}},
    )
    assert runs.success
    assert sources(database_url, "stock_daily_candles") == {"simulator:range"}
    assert sources(database_url, "crypto_daily_candles") == {"simulator:grouped"}
    # The first real write claimed the store, in its own transaction.
    assert claim(database_url) == [("simulator",)]


def test_a_server_posing_as_polygon_is_labelled_polygon(sim, keyed_env, database_url):
    sim.configure(identify=False)
    assert stock_run(FIRST).success
    assert sources(database_url, "stock_daily_candles") == {"polygon:range"}
    assert claim(database_url) == [("polygon",)]


@pytest.mark.parametrize(
    "first_identifies",
    [True, False],
    ids=["simulator-then-keyed-server", "keyed-server-then-simulator"],
)
def test_a_run_of_the_other_kind_is_refused_and_writes_nothing(
    sim, keyed_env, database_url, first_identifies
):
    sim.configure(identify=first_identifies)
    assert stock_run(FIRST).success
    held, other = ("simulator", "polygon") if first_identifies else ("polygon", "simulator")
    assert claim(database_url) == [(held,)]
    table = read_table(database_url, "stock_daily_candles")
    status = query(database_url, "SELECT * FROM marketdata.tracked_symbols ORDER BY symbol")

    sim.configure(identify=not first_identifies)
    sim.reset()  # counters only
    result = stock_run(SECOND)
    assert not result.success
    assert mixed_sources_message(held, other) in failure_text(result)
    assert sim.stats(include_log=False)["requests"] == 1  # fetched, then refused at the write
    assert read_table(database_url, "stock_daily_candles").equals(table)
    assert query(database_url, "SELECT * FROM marketdata.tracked_symbols ORDER BY symbol") == status
    assert claim(database_url) == [(held,)]


def test_the_split_repair_writes_through_the_claim_and_records_the_symbol_status(
    sim, keyed_env, database_url, tmp_path
):
    """The repair's write is the assets' write: its rows are labelled by who answered, the
    symbol's status is recorded, and a repair from the other kind of source is refused."""
    sim.configure(identify=False)
    assert stock_run(FIRST).success
    (attempt_before,) = query(
        database_url, "SELECT last_attempt_at FROM marketdata.tracked_symbols WHERE symbol='AAPL'"
    )
    table = read_table(database_url, "stock_daily_candles")

    # The simulator now says what it is: its repair of AAPL's history is refused.
    sim.configure(identify=True, splits=[AAPL_SPLIT])
    refused = materialise(*SECOND, production_resources(), assets=REPAIR)
    assert not refused.success
    assert mixed_sources_message("polygon", "simulator") in failure_text(refused)
    assert read_table(database_url, "stock_daily_candles").equals(table)

    # A repair never reads the page cache (a kept page may predate the split): posing as
    # Polygon again, its re-fetch goes through the assets' write, labelled and recorded.
    sim.configure(identify=False)
    repaired = materialise(*SECOND, production_resources(), assets=REPAIR)
    assert repaired.success
    after = read_table(database_url, "stock_daily_candles")
    assert after.get_column("close").to_list() != table.get_column("close").to_list()
    assert set(after.get_column("source")) == {"polygon:range"}
    (attempt_after,) = query(
        database_url,
        "SELECT last_attempt_at FROM marketdata.tracked_symbols WHERE symbol='AAPL'"
        " AND status = 'ok'",
    )
    assert attempt_after[0] > attempt_before[0]
    assert claim(database_url) == [("polygon",)]


def test_a_store_written_before_claims_were_recorded_is_claimed_from_its_rows(
    sim, keyed_env, database_url
):
    """Stores written before the claim was made by every write hold rows but no claim: the
    first write claims them from what they hold, so their mixing is refused all the same."""
    assert stock_run(FIRST).success
    with psycopg.connect(database_url) as conn:
        conn.execute("DELETE FROM marketdata.store_info")  # as such a store is
    table = read_table(database_url, "stock_daily_candles")
    sim.configure(identify=False)
    result = stock_run(SECOND)
    assert mixed_sources_message("simulator", "polygon") in failure_text(result)
    assert read_table(database_url, "stock_daily_candles").equals(table)
    assert claim(database_url) == []
