"""The example downstream asset reads its partition window's candles through the candle IO
manager's `load_input`, in a real Dagster run of the code location's assets."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl

from marketdata_pipeline.definitions import defs
from marketdata_pipeline.defs.examples.assets import daily_breadth, markdown_table
from marketdata_pipeline_tests.helpers import (
    materialise,
    range_tags,
    read_table,
    stock_daily_candles,
)

stock_daily_breadth = defs.get_assets_def("stock_daily_breadth")
SYMBOLS = {"stock_daily_candles": ["AAPL", "MSFT", "NVDA"]}


def test_the_example_reads_exactly_its_windows_candles(resources, database_url):
    assert materialise(
        dt.date(2024, 4, 1), dt.date(2024, 4, 30), resources,
        assets=[stock_daily_candles], symbols=SYMBOLS,
    ).success  # fmt: skip
    window = (dt.date(2024, 4, 8), dt.date(2024, 4, 12))
    result = dg.materialize(
        [stock_daily_candles, stock_daily_breadth],
        selection=[stock_daily_breadth],
        resources=resources,
        tags=range_tags(*window),
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    (loaded,) = [e for e in result.all_events if e.event_type_value == "LOADED_INPUT"]
    assert loaded.event_specific_data.manager_key == "candle_io_manager"
    events = result.get_asset_materialization_events()
    assert len(events) == 5  # one per session of the window, one run
    metadata = events[-1].materialization.metadata
    stored = read_table(database_url, "stock_daily_candles").filter(
        pl.col("day").is_between(*window)
    )
    assert metadata["bars_read"].value == stored.height == 3 * 5
    assert metadata["days"].value == 5
    expected = daily_breadth(stored)
    assert expected["stocks"].to_list() == [3] * 5
    # The asset saw exactly the stored rows: the same figures, to the last digit.
    assert metadata["breadth"].value == markdown_table(expected)
