"""The corporate-action assets read the whole market at most once a day per store.

Real Postgres, the simulator over HTTP, Dagster runs of the real assets. What a run sends is
read from the simulator's counters; what the store remembers from `marketdata.reference_refresh`.
"""

from __future__ import annotations

import threading

import dagster as dg

from marketdata_pipeline_tests.helpers import (
    query,
    reference_reads_age,
    stock_dividends,
    stock_splits,
)

EVENTS = [stock_splits, stock_dividends]


def requests_by_kind(sim) -> dict[str, int]:
    return {k: n for k, n in sim.stats(include_log=False)["by_kind"].items() if n}


def refresh(resources, config: dict | None = None) -> dg.ExecuteInProcessResult:
    # The instance is closed in the thread that made it (its SQLite storage is per thread).
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            EVENTS,
            resources=resources,
            instance=instance,
            run_config={"ops": config or {}},
            raise_on_error=False,
        )


def reads(database_url: str) -> dict[str, tuple]:
    rows = query(
        database_url,
        "SELECT kind, covers_from, covers_to, requests FROM marketdata.reference_refresh"
        " WHERE scope = 'market'",
    )
    return {kind: rest for kind, *rest in rows}


def test_a_second_refresh_the_same_day_sends_nothing_unless_forced(sim, resources, database_url):
    assert refresh(resources).success
    assert requests_by_kind(sim) == {"splits": 1, "dividends": 1}
    assert set(reads(database_url)) == {"splits", "dividends"}
    sim.reset()
    assert refresh(resources).success
    assert requests_by_kind(sim) == {}
    # Asked explicitly, each reads the whole market's window again.
    forced = {
        "stock_splits": {"config": {"force": True}},
        "stock_dividends": {"config": {"force": True}},
    }
    assert refresh(resources, forced).success
    assert requests_by_kind(sim) == {"splits": 1, "dividends": 1}
    # A window today's read did not cover is read; one it covered is not.
    sim.reset()
    (start, _end, _requests) = reads(database_url)["splits"]
    earlier = {"stock_splits": {"config": {"start": "2023-06-01"}}}
    assert start.isoformat() > "2023-06-01"
    assert refresh(resources, earlier).success
    assert requests_by_kind(sim) == {"splits": 1}
    assert reads(database_url)["splits"][0].isoformat() == "2023-06-01"
    sim.reset()
    assert refresh(resources, {"stock_splits": {"config": {"start": "2024-03-01"}}}).success
    assert requests_by_kind(sim) == {}
    # The next day, the default reads again.
    reference_reads_age(database_url)
    assert refresh(resources).success
    assert requests_by_kind(sim) == {"splits": 1, "dividends": 1}


def test_a_failed_read_is_not_recorded_and_the_next_run_reads_again(sim, resources, database_url):
    sim.add_fault(kind="status", status_code=400, match_path="/stocks/v1/splits")
    result = refresh(resources)
    assert not result.success
    assert set(reads(database_url)) == {"dividends"}
    sim.clear_faults()
    sim.reset()
    assert refresh(resources).success
    assert requests_by_kind(sim) == {"splits": 1}


def test_two_refreshes_at_once_read_the_market_once(sim, resources, database_url):
    sim.configure(latency_seconds=0.3)  # both runs are inside their read at the same time
    results: list[dg.ExecuteInProcessResult] = []
    runs = [threading.Thread(target=lambda: results.append(refresh(resources))) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert len(results) == 2 and all(r.success for r in results)
    assert requests_by_kind(sim) == {"splits": 1, "dividends": 1}
