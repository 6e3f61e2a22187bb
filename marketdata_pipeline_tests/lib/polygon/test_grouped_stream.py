"""A grouped plan streamed in chunks: cut by what the pages carry, in day order, prefetched."""

from __future__ import annotations

import datetime as dt

from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.resources import make_polygon

JANUARY = CandleWindow(dt.date(2024, 1, 1), dt.date(2024, 1, 31))  # 21 NYSE sessions


def stocks(*names: str):
    return [parse_symbol(n, AssetClass.STOCK) for n in names]


def chunk_days(polygon, symbols, rows: int) -> list[list[dt.date]]:
    return [
        list(chunk.plan.days)
        for chunk in polygon.fetch_chunks(
            AssetClass.STOCK, symbols, JANUARY, force_strategy="grouped", chunk_rows=rows
        )
    ]


def test_grouped_chunks_follow_the_market_on_a_page_not_the_stocks_asked_for(sim):
    sim.configure(stock_universe_size=1_000)
    polygon = make_polygon(sim)
    # The pages carry 1,000+ tickers a day: 2,500 bars held make 3 days a chunk, whether the
    # run asks for one stock or four (sized by the stocks asked for, one stock would have
    # put all 21 days in one chunk, holding 21 whole pages).
    one = chunk_days(polygon, stocks("AAPL"), 2_500)
    four = chunk_days(polygon, stocks("AAPL", "IBM", "MSFT", "ORCL"), 2_500)
    assert one == four
    assert [len(days) for days in one] == [3] * 7
    flat = [day for days in one for day in days]
    assert flat == sorted(flat) and len(flat) == 21, "every session once, in day order"
    assert sim.stats()["by_kind"]["grouped"] == 42, "one request per session and run"


def test_grouped_chunks_hold_only_the_stocks_asked_for(sim):
    polygon = make_polygon(sim)
    (chunk,) = polygon.fetch_chunks(
        AssetClass.STOCK, stocks("AAPL", "MSFT"), JANUARY, force_strategy="grouped",
        chunk_rows=None,
    )  # fmt: skip
    assert sorted(chunk.frame.get_column("symbol").unique()) == ["AAPL", "MSFT"]
    assert chunk.frame.height == 2 * 21


def test_a_failed_day_ends_the_stream_with_every_symbol_failed(sim):
    sim.add_fault(kind="status", status_code=404, match_path="2024-01-17")
    polygon = make_polygon(sim)
    chunks = list(
        polygon.fetch_chunks(
            AssetClass.STOCK, stocks("AAPL", "MSFT"), JANUARY, force_strategy="grouped",
            chunk_rows=1,
        )
    )  # fmt: skip
    *good, failed = chunks
    assert all(not c.errors for c in good) and failed.errors
    assert set(failed.errors) == {"AAPL", "MSFT"} and failed.frame.height == 0
    assert "grouped daily request failed" in failed.errors["AAPL"]
    # Chunks before the failure may or may not have been yielded (the days are in flight
    # together); none reaches past it.
    assert all(d < dt.date(2024, 1, 17) for c in good for d in c.plan.days)
    # Days queued behind the failure are not requested: at most the workers' in-flight ones.
    assert sim.stats()["by_kind"]["grouped"] <= 21
