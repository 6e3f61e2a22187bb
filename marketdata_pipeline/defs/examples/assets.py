"""`stock_daily_breadth`: an example downstream asset reading candles through the IO manager.

Copy it to start a features asset of your own. The pattern:

- the same partitions as `stock_daily_candles` (NYSE sessions) and a single-run backfill policy,
  so a range of days is one run and one read;
- the candles as a parameter named after the upstream asset: Dagster loads them with the candle
  IO manager's `load_input`, which returns the rows of this run's partition window (every stored
  symbol) as one polars frame in the candle schema;
- vectorised polars on that frame; here the result goes to the asset's metadata (a real features
  asset would write a table of its own, or return a frame to an IO manager for it).

It is in no job or schedule: materialise it from the UI (Assets > stock_daily_breadth) for the
partitions you want, after their candles are stored.
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

import dagster as dg
import polars as pl

from marketdata_pipeline.lib.candles.window import CandleWindow


def daily_breadth(candles: pl.DataFrame) -> pl.DataFrame:
    """Per day: stocks with a bar, how many closed above / below their open, and the traded
    value (close x volume) of the day."""
    return (
        candles.group_by("day")
        .agg(
            pl.len().alias("stocks"),
            (pl.col("close") > pl.col("open")).sum().alias("up"),
            (pl.col("close") < pl.col("open")).sum().alias("down"),
            (pl.col("close") * pl.col("volume")).sum().alias("traded_value"),
        )
        .sort("day")
    )


def build_example_assets(partitions: dg.PartitionsDefinition) -> tuple[dg.AssetsDefinition, ...]:
    """The example assets, on the stock candles' `partitions`."""

    @dg.asset(
        group_name="examples",
        kinds={"polars"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def stock_daily_breadth(
        context: dg.AssetExecutionContext, stock_daily_candles: pl.DataFrame
    ) -> dg.MaterializeResult:
        """Market breadth per NYSE session (an example of a downstream asset): stocks with a
        bar, up and down closes, traded value.

        Reads the stored candles of its partition window through the candle IO manager
        (`load_input`), so it is a template for features assets of your own.
        """
        breadth = daily_breadth(stock_daily_candles)
        context.log.info(
            f"stock_daily_breadth {CandleWindow.of(context)}: {stock_daily_candles.height} bars, "
            f"{breadth.height} days"
        )
        return dg.MaterializeResult(
            metadata={
                "bars_read": stock_daily_candles.height,
                "days": breadth.height,
                "breadth": dg.MetadataValue.md(markdown_table(breadth.tail(20))),
            }
        )

    return (stock_daily_breadth,)


def markdown_table(frame: pl.DataFrame) -> str:
    """`frame` as a Markdown table (what the UI shows in the metadata)."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(str(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])
