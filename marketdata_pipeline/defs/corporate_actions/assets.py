"""The corporate-action assets: split and dividend events, and split-adjusted history kept true.

`stock_splits` and `stock_dividends` are not partitioned: they are event tables keyed by event
date, refreshed by one whole-market query over a window (a few pages), so a partition per day
would show thousands of partitions for what is one cheap request. Each store reads that window
at most once a (New York) day, whatever the number of runs (`lib/corporate_action_plan.py`):
a later run that day materialises them without a request. `stock_split_adjustments` is
partitioned like the candles and depends on `stock_daily_candles` and `stock_splits`, so any run
that fetches candles and learns of a split (the revision schedule, `marketdata backfill`, the
symbol sensor's history runs) repairs the older history in the same run.
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

import datetime as dt

import dagster as dg

from marketdata_pipeline.defs.corporate_actions import checks
from marketdata_pipeline.defs.corporate_actions.history import bring_history_current
from marketdata_pipeline.defs.corporate_actions.refresh import (
    EventWindowConfig,
    SplitAdjustmentConfig,
    refresh_dividends,
    refresh_splits,
)
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
from marketdata_pipeline.lib.symbols import AssetClass

GROUP = "corporate_actions"


#: The assets a run that fetches stock candles includes to keep history true.
CORPORATE_ACTION_NAMES = ("stock_splits", "stock_dividends", "stock_split_adjustments")


def build_corporate_action_assets(
    partitions: dg.PartitionsDefinition, start_date: dt.date
) -> tuple[dg.AssetsDefinition, ...]:
    """`stock_splits`, `stock_dividends` (events since `start_date`, the first partition) and
    `stock_split_adjustments` (on the candles' `partitions`)."""

    @dg.asset(
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        check_specs=[checks.records_spec("stock_splits", "split")],
        metadata={"dagster/table_name": "marketdata.stock_splits"},
    )
    def stock_splits(
        context: dg.AssetExecutionContext,
        config: EventWindowConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
    ):
        """Stock splits of the whole US market, in `marketdata.stock_splits`.

        One query by execution date over MARKETDATA_START_DATE..today (a page or two: the whole
        market splits a few hundred times a year), so a split the vendor adds or corrects anywhere
        in the stored history is learned. Read at most once a day per store
        (`marketdata.reference_refresh`): a later run that day sends nothing. Splits are upserted,
        keyed (symbol, execution_date); a new one, or a changed ratio, gets a fresh `learned_at`,
        which marks older stored bars of that symbol stale until `stock_split_adjustments`
        re-fetches them.
        """
        refresh = refresh_splits(config, polygon, database, start_date)
        read, counts = refresh.read, refresh.counts
        if counts is None:  # today's read is on record
            context.log.info(f"stock_splits {read.start}..{read.end}: {read.reason()}, no request")
            yield checks.records_not_read_result("split", read.reason())
            yield dg.MaterializeResult(metadata=refresh.metadata())
            return
        learned = [f"{symbol} {day}" for symbol, day in counts.learned]
        context.log.info(
            f"stock_splits {read.start}..{read.end}: {refresh.frame.height} splits in "
            f"{refresh.pages} pages, {counts.new} new, {counts.changed} with a changed ratio"
        )
        yield checks.records_result("split", refresh.frame.height, refresh.rejected)
        yield dg.MaterializeResult(
            metadata={
                **refresh.metadata(),
                "ratio_changed": counts.changed,
                "learned": dg.MetadataValue.json(learned[:50]),
            }
        )

    @dg.asset(
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        check_specs=[checks.records_spec("stock_dividends", "dividend")],
        metadata={"dagster/table_name": "marketdata.stock_dividends"},
    )
    def stock_dividends(
        context: dg.AssetExecutionContext,
        config: EventWindowConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
    ):
        """Cash dividends of US stocks, in `marketdata.stock_dividends`.

        Amounts are per share as paid (never split-adjusted). Once a day per store
        (`marketdata.reference_refresh`) it re-reads the ex-dates of the last `lookback_days`
        for the whole market (a page or two; the market pays tens of thousands of dividends a
        year, so re-reading all history daily would cost dozens of pages). Active tracked stocks
        whose history is not loaded yet (new ones, or all of them on the first run) get their
        dividends since MARKETDATA_START_DATE in one query per 100 tickers, on any run. Feeds
        the total return of `marketdata.stock_daily_returns`.
        """
        refresh = refresh_dividends(config, polygon, database, start_date)
        read, pending = refresh.read, refresh.histories
        if refresh.counts is None:
            context.log.info(
                f"stock_dividends {read.start}..{read.end}: {read.reason()}, and every tracked "
                "history is loaded: no request"
            )
            yield checks.records_not_read_result("dividend", read.reason())
        else:
            context.log.info(
                f"stock_dividends {read.start}..{read.end} (whole market: {read.reason()}) and "
                f"{len(pending)} histories since {start_date}: {refresh.frame.height} dividends "
                f"in {refresh.pages} pages, {refresh.counts.new} new"
            )
            yield checks.records_result("dividend", refresh.frame.height, refresh.rejected)
        yield dg.MaterializeResult(
            metadata={**refresh.metadata(), "histories_loaded": len(pending)}
        )

    @dg.asset(
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[dg.AssetKey("stock_daily_candles"), stock_splits],
        check_specs=checks.ADJUSTMENT_SPECS,
    )
    def stock_split_adjustments(
        context: dg.AssetExecutionContext,
        config: SplitAdjustmentConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
        # The repaired spans are written by the candle IO manager, like every candle slice.
        candle_io_manager: dg.ResourceParam[PostgresCandleIOManager],
    ):
        """Keeps `marketdata.stock_daily_candles` split-adjusted as of the latest known split.

        After the run's candles and splits are stored, every active tracked stock whose stored bars
        predate a split they do not reflect gets that span re-fetched (one range request per such
        symbol) and replaced in one transaction by the candle IO manager, so its whole history
        equals the vendor's adjusted bars now. A rerun finds nothing stale and makes no request.
        Its `split_vs_move` check looks for split-like steps without a split event in the run's
        window, reading the stored bars a batch of symbols at a time (`rows_per_chunk`), so
        memory follows the batch, not the window.
        """
        window = context.partition_time_window
        start, end = window.start.date(), window.end.date() - dt.timedelta(days=1)
        report = bring_history_current(polygon, database, candle_io_manager, log=context.log)
        yield checks.history_result(report.failed, len(report.repaired))
        with database.connect() as conn:
            tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
        yield checks.split_vs_move_result(
            database, [s.symbol for s in tracked], start, end, rows_per_chunk=config.rows_per_chunk
        )
        yield dg.MaterializeResult(
            metadata={
                **report.as_metadata(),
                # Dagster copies this onto every partition of a single-run range: keep it short.
                "repaired": ", ".join(
                    f"{symbol} {detail['window']}"
                    for symbol, detail in sorted(report.repaired.items())[:20]
                ),
                "window": f"{start}..{end}",
            }
        )

    return (stock_splits, stock_dividends, stock_split_adjustments)
