"""The shared request budget: concurrent runs stay within POLYGON_REQUESTS_PER_MINUTE together."""

from __future__ import annotations

import datetime as dt
import threading

from marketdata_pipeline.lib.polygon.rate_budget import budget_rates
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline_tests.helpers import materialise, stock_daily_candles
from marketdata_pipeline_tests.resources import make_polygon

BUDGET = 6  # requests per window, enforced by the simulator as well
# The budget's arithmetic does not depend on the window's length: a 6-second window checks in
# seconds what a real minute would check in a minute (client and simulator use the same one).
WINDOW = 6.0
# The clients' window is a little longer than the server's: a request's transit time varies
# (more so on a loaded machine), and a slot freed on the client's clock must be free on the
# server's when the request arrives.
CLIENT_WINDOW = WINDOW + 0.5


def test_budget_rates_add_a_per_second_window_for_large_budgets():
    assert [(r.limit, r.interval) for r in budget_rates(5)] == [(1, 1000), (5, 60_000)]
    assert [(r.limit, r.interval) for r in budget_rates(6000)] == [(100, 1000), (6000, 60_000)]
    assert [(r.limit, r.interval) for r in budget_rates(6000, 6.0)] == [(100, 100), (6000, 6000)]


def test_two_concurrent_runs_share_the_budget_and_meet_no_429(sim, database_url):
    """Two backfills of 4 symbols each (8 range requests) under a budget of 6 per window."""
    sim.configure(
        requests_per_minute=BUDGET, rate_limit_window_seconds=WINDOW, rate_limit_retry_after=True
    )
    results = []

    def backfill(symbols: list[str]) -> None:
        database = PostgresDatabase(url=database_url)
        resources = {
            "polygon": make_polygon(
                sim,
                requests_per_minute=BUDGET,
                budget_window_seconds=CLIENT_WINDOW,
                database=database,
                max_attempts=2,
            ),
            "database": database,
            "candle_io_manager": PostgresCandleIOManager(database=database),
        }
        results.append(
            materialise(
                dt.date(2024, 10, 1),
                dt.date(2024, 10, 31),
                resources,
                assets=[stock_daily_candles],
                symbols={"stock_daily_candles": symbols},
            )
        )

    threads = [
        threading.Thread(target=backfill, args=(names,))
        for names in (["AAPL", "MSFT", "NVDA", "AMZN"], ["GOOGL", "META", "TSLA", "JPM"])
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert len(results) == 2 and all(r.success for r in results)
    log = sim.stats()["log"]
    assert [e["status"] for e in log] == [200] * 8, "no request was refused with 429"
    times = sorted(e["t"] for e in log)
    # Within any window the two runs together sent at most BUDGET requests.
    for i, t0 in enumerate(times):
        assert sum(1 for t in times[i:] if t - t0 < WINDOW) <= BUDGET
    assert times[-1] - times[0] >= WINDOW - 1.0, "the 7th request had to wait for the window"


def test_the_budget_table_is_named_as_docs_api_keys_says(database_url):
    """docs/api-keys.md: `marketdata.ratelimit___polygon_<hash>`, the hash of key and API root."""
    import psycopg

    from marketdata_pipeline.lib.polygon.rate_budget import PostgresRateBudget, budget_name
    from marketdata_pipeline.lib.postgres.ddl import migrate

    with psycopg.connect(database_url) as conn:
        migrate(conn)
    name = budget_name("some-key", "https://api.massive.com")
    assert name.startswith("polygon_") and "some-key" not in name
    budget = PostgresRateBudget(60, database_url=database_url, name=name)
    try:
        budget.acquire()
    finally:
        budget.close()
    with psycopg.connect(database_url) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'marketdata'"
            " AND table_name LIKE 'ratelimit%%'"
        ).fetchall()
    assert tables == [(f"ratelimit___{name}",)]
