"""The daily ticker-reference maintenance through the real asset, counted by the simulator.

After the first (full) load, a day's load asks for the listed rows newest first
(`sort=last_updated_utc`) and the delisted rows newest first (`sort=delisted_utc`), each down to
the last load's watermark, plus one page of rolling reconciliation in ticker order, and the
events of renamed securities only: a handful of requests whatever the market's size, landing
exactly the day's changes.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import dagster as dg
import psycopg
import pytest

from marketdata_pipeline_tests.defs.reference.test_identity import (
    WORLD,
    load_reference,
    ticker_reference,
)
from marketdata_pipeline_tests.helpers import query
from marketdata_pipeline_tests.simulator.test_listings import day_two_changes
from polygon_simulator import identity_world, market
from polygon_simulator.listings import universe_listing

D = dt.date
DAY_ONE, DAY_TWO = D(2025, 6, 2), D(2025, 6, 3)


def identity() -> list[dict]:
    return [item.model_dump(mode="json") for item in identity_world(**WORLD)]


def stored(database_url: str) -> set[tuple]:
    return set(
        query(
            database_url,
            "SELECT security_id, ticker, first_day, last_day FROM marketdata.ticker_history",
        )
    )


def next_day(database_url: str) -> None:
    """Make the store's last load yesterday's (the asset's once-a-day check uses the clock)."""
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE marketdata.reference_refresh SET refreshed_on = refreshed_on - 1")


def requests(sim) -> list[tuple[str, str]]:
    """(kind, what) of each request since the last reset: the ticker list's sort, or the id
    an events request asked about."""
    out = []
    for entry in sim.stats()["log"]:
        params = dict(parse_qsl(entry["query"]))
        what = params.get("sort", "cursor" if "cursor" in params else "")
        if params.get("ticker"):
            what += f" ticker={params['ticker']}"
        out.append((entry["kind"], entry["ticker"] if entry["kind"] == "ticker_events" else what))
    return out


@pytest.fixture
def loaded(sim, resources, database_url):
    """A store after its first (full) load of a 20-stock world with the identity facts."""
    sim.configure(listings=identity(), stock_universe_size=20, today=DAY_ONE)
    assert load_reference(resources).success
    assert sim.stats(include_log=False)["requests"] == 2 + 2  # listed, delisted, 2 events
    next_day(database_url)
    sim.reset()
    return sim


def test_a_day_with_a_listing_a_delisting_and_a_rename_costs_four_requests(
    loaded, resources, database_url
):
    before = stored(database_url)
    loaded.configure(listings=identity() + day_two_changes(), today=DAY_TWO)
    result = load_reference(resources)
    assert result.success
    msft = universe_listing("MSFT").composite_figi
    assert requests(loaded) == [
        ("tickers", "last_updated_utc"),  # NEWCO, MSFX and the newest unchanged row
        ("tickers", "delisted_utc"),  # AAPL, MSFT, down to a week before SIVB
        ("tickers", "ticker"),  # the reconciliation page (the whole 20-stock market here)
        ("ticker_events", msft),  # the renamed company only
    ]
    aapl = universe_listing("AAPL").composite_figi
    after = stored(database_url)
    assert after - before == {
        (aapl, "AAPL", D(2024, 1, 1), D(2025, 6, 2)),
        (msft, "MSFT", market.FIRST_DAY, D(2025, 6, 2)),  # the events date the whole life
        (msft, "MSFX", D(2025, 6, 3), None),
        ("BBG0NEWC0000", "NEWCO", D(2024, 1, 1), None),  # the list has no list date
    }
    assert before - after == {
        (aapl, "AAPL", D(2024, 1, 1), None),
        (msft, "MSFT", D(2024, 1, 1), None),
    }
    (materialization,) = result.asset_materializations_for_node("ticker_reference")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["mode"] == "changes" and metadata["requests"] == 4
    assert query(
        database_url, "SELECT active FROM marketdata.securities WHERE security_id = %s", (aapl,)
    ) == [(False,)]


def test_a_day_without_a_change_costs_two_requests_and_a_reconciliation_page(
    loaded, resources, database_url
):
    before = query(
        database_url,
        "SELECT security_id, ticker, first_day, last_day, updated_at"
        " FROM marketdata.ticker_history ORDER BY 1, 2, 3",
    )
    loaded.configure(today=DAY_TWO)
    assert load_reference(resources).success
    assert requests(loaded) == [
        ("tickers", "last_updated_utc"),
        ("tickers", "delisted_utc"),
        ("tickers", "ticker"),
    ]
    after = query(
        database_url,
        "SELECT security_id, ticker, first_day, last_day, updated_at"
        " FROM marketdata.ticker_history ORDER BY 1, 2, 3",
    )
    assert after == before  # nothing rewritten
    watermark = query(
        database_url,
        "SELECT kind, watermark FROM marketdata.reference_refresh"
        " WHERE kind IN ('tickers', 'tickers_delisted') ORDER BY kind",
    )
    # Meta's first day as META (the newest listed change), SVB's delisting.
    assert [(k, w.date()) for k, w in watermark] == [
        ("tickers", D(2024, 6, 10)),
        ("tickers_delisted", D(2024, 9, 14)),
    ]


def test_a_change_the_watermarks_miss_is_found_by_the_reconciliation_within_a_cycle(
    sim, resources, database_url
):
    """A vendor that back-dates rows: a listing and a delisting dated before the watermarks
    are missed by the newest-first reads, and found by the rolling reconciliation pages,
    within ceil(listed / 1000) = 3 days for a 2,500-stock market."""
    sim.configure(listings=identity(), stock_universe_size=2500, today=DAY_ONE)
    assert load_reference(resources).success
    last = query(
        database_url,
        "SELECT max(ticker) FROM marketdata.ticker_history WHERE last_day IS NULL",
    )[0][0]
    assert last in market.stock_universe(2500)
    gone = universe_listing(last).model_dump(mode="json")
    gone["tickers"][0]["last_day"] = "2024-05-01"
    late = {
        "name": "Late Listing Corp",
        "composite_figi": "BBG0LATE0000",
        "tickers": [{"ticker": "BACKD", "first_day": "2024-05-01"}],
    }
    sim.configure(listings=[*identity(), gone, late], today=DAY_TWO)
    found_on = {}
    costs = []
    for day in range(3):
        next_day(database_url)
        sim.reset()
        assert load_reference(resources).success
        costs.append(requests(sim))
        held = {t for _, t, _, e in stored(database_url) if e is None}
        if "BACKD" in held:
            found_on.setdefault("BACKD", day)
        if last not in held:
            found_on.setdefault(last, day)
    assert found_on == {"BACKD": 0, last: 2}  # BACKD on the first page, the last on the third
    # Three requests a day, and the day the missing ticker is asked about one more.
    assert [len(c) for c in costs] == [3, 3, 4]
    assert costs[2][-1] == ("tickers", f"ticker ticker={last}")  # active=false, that ticker
    resume = query(
        database_url,
        "SELECT resume_after FROM marketdata.reference_refresh WHERE kind = 'tickers'",
    )
    assert resume == [(None,)]  # the cycle is over: the next pass starts from the first ticker


def test_a_dry_run_says_what_the_days_ticker_load_will_ask(sim, resources, cli, dagster_env):
    sim.configure(listings=identity(), stock_universe_size=20, today=DAY_ONE)
    assert cli("symbols", "add", "--market", "stocks", "--type", "CS")[0] == 0
    dry_run = ("backfill", "--start", "2025-05-27", "--end", "2025-05-30", "--dry-run")
    code, out, err = cli(*dry_run)
    assert code == 0, err
    assert "first loads the ticker reference, the whole list (about 2 requests per 1,000" in out
    assert sim.stats(include_log=False)["requests"] == 0
    assert load_reference(resources).success
    next_day(resources["database"].url)
    code, out, err = cli(*dry_run)
    assert code == 0, err
    assert "only what changed since the last load (3 requests, plus one per renamed" in out


def test_without_reconciliation_a_day_without_a_change_costs_two_requests(
    loaded, resources, database_url
):
    loaded.configure(today=DAY_TWO)
    result = dg.materialize(
        [ticker_reference],
        resources={k: resources[k] for k in ("polygon", "database")},
        run_config={"ops": {"ticker_reference": {"config": {"reconcile_pages": 0}}}},
    )
    assert result.success
    assert requests(loaded) == [("tickers", "last_updated_utc"), ("tickers", "delisted_utc")]
