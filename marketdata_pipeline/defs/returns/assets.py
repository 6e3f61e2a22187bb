"""`stock_daily_returns_stored`: daily simple and total returns kept in a table by the candle runs.

Partitioned like the stock candles and downstream of them, of the split repair and of the
dividends, so every stock run (the revision schedule, `marketdata backfill`, the symbol sensor's
history runs) rewrites the returns of its window, and of whatever a split or dividend changed,
right after the candles and the events are stored.
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

import dagster as dg

from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.returns import TABLE, refresh_returns

RETURNS_ASSET = TABLE


def build_returns_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The returns asset on the stock candles' `partitions`."""

    @dg.asset(
        name=RETURNS_ASSET,
        group_name="returns",
        kinds={"postgres"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[
            dg.AssetKey("stock_daily_candles"),
            dg.AssetKey("stock_split_adjustments"),
            dg.AssetKey("stock_dividends"),
        ],
        metadata={"dagster/table_name": f"marketdata.{TABLE}", "partition_expr": "day"},
    )
    def stock_daily_returns_stored(
        context: dg.AssetExecutionContext, database: PostgresDatabase
    ) -> dg.MaterializeResult:
        """Daily simple and dividend-inclusive total returns of the stored stocks, in
        `marketdata.stock_daily_returns_stored` (the rows of the view `stock_daily_returns`).

        Rewrites, in one transaction, the run's window (through each symbol's next bar), the
        whole history of symbols whose split is new, changed or was just applied, and the
        ex-dates of dividends read since the last run. One day across the market is then read
        from the table's index on day.
        """
        window = CandleWindow.of(context)
        with database.connect() as conn:
            done = refresh_returns(conn, window.first, window.last)
        context.log.info(
            f"marketdata.{TABLE} {window}: {done.written} rows written ({done.deleted} replaced)"
            f" for {done.window_symbols} symbols in the window, {done.history_symbols} whole"
            f" histories after a split, {done.dividend_days} dividend ex-dates"
        )
        return dg.MaterializeResult(
            metadata={
                "window": str(window),
                "rows_written": done.written,
                "rows_replaced": done.deleted,
                "window_symbols": done.window_symbols,
                "histories_rewritten": done.history_symbols,
                "dividend_days": done.dividend_days,
            }
        )

    return stock_daily_returns_stored
