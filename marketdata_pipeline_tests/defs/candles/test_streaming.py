"""A run streamed in chunks: same rows and checks as one chunk, and all-or-nothing writes."""

from __future__ import annotations

import datetime as dt

import pytest

from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    materialise,
    query,
    read_table,
    stock_daily_candles,
)

JANUARY = (dt.date(2024, 1, 1), dt.date(2024, 1, 31))  # 21 NYSE sessions
STOCKS = ["AAPL", "IBM", "MSFT", "ORCL"]


def run(resources, *, strategy: str, rows_per_chunk: int, threshold: float = 0.5):
    config = {"strategy": strategy, "rows_per_chunk": rows_per_chunk, "jump_threshold": threshold}
    return materialise(
        *JANUARY,
        resources,
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": STOCKS},
        config={"stock_daily_candles": config},
    )


def chunks_of(result) -> int:
    # The run's figures are on its newest partition's event only.
    (metadata,) = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if "spooled_chunks" in e.materialization.metadata
    ]
    return metadata["spooled_chunks"].value


# A grouped chunk is cut by the bars its pages carry (the simulator's market, about 2,000
# tickers a day), not by the 4 stocks asked for: 5,000 bars make 3 days a chunk.
@pytest.mark.parametrize(("strategy", "rows_per_chunk"), [("range", 21), ("grouped", 5_000)])
def test_chunked_runs_store_and_check_what_one_chunk_does(
    sim, resources, database_url, strategy: str, rows_per_chunk: int
):
    # A tiny jump threshold flags many moves, also across the edges between chunks of days.
    whole = run(resources, strategy=strategy, rows_per_chunk=1_000_000, threshold=0.001)
    assert whole.success and chunks_of(whole) == 1
    expected = read_table(database_url, "stock_daily_candles").drop("fetched_at")
    expected_checks = check_evaluations(whole)

    chunked = run(resources, strategy=strategy, rows_per_chunk=rows_per_chunk, threshold=0.001)
    assert chunked.success
    assert chunks_of(chunked) == (4 if strategy == "range" else 7)
    assert read_table(database_url, "stock_daily_candles").drop("fetched_at").equals(expected)
    assert expected.height == len(STOCKS) * 21
    for name, evaluation in check_evaluations(chunked).items():
        before = expected_checks[name]
        assert evaluation.passed == before.passed, name
        for key in ("jumps", "missing_sessions", "bars", "quarantined"):
            if key in before.metadata:
                assert evaluation.metadata[key] == before.metadata[key], (name, key)
    jumps = check_evaluations(chunked)["stock_daily_candles:price_jumps"].metadata["jumps"]
    assert jumps.value > 0


def test_a_structural_failure_in_the_last_chunk_leaves_the_table_as_it_was(
    sim, resources, database_url
):
    assert run(resources, strategy="range", rows_per_chunk=1_000_000).success
    before = read_table(database_url, "stock_daily_candles")  # fetched_at included
    rejected_before = query(database_url, "SELECT * FROM marketdata.rejected_candles")
    # ORCL is the last symbol, so the last of four chunks: three are validated and spooled
    # before the bad one arrives.
    sim.add_fault(kind="bad_bars", ticker="ORCL", corrupt=["null_field"])
    failed = run(resources, strategy="range", rows_per_chunk=21)
    assert not failed.success
    assert read_table(database_url, "stock_daily_candles").equals(before)
    assert query(database_url, "SELECT * FROM marketdata.rejected_candles") == rejected_before
    schema = check_evaluations(failed)["stock_daily_candles:ohlcv_schema"]
    assert not schema.passed
    assert "nulls in required fields" in schema.description
