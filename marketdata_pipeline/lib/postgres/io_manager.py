"""`PostgresCandleIOManager`: hands candle batches to the store and loads slices back.

The IO manager trusts the batch: the window and symbols it replaces and the kind of source that
answered were decided once by the asset (`CandleBatch`), and every statement, the source claim
included, lives in the store (`store.py`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dagster as dg
import polars as pl
import psycopg

from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import MarketdataError
from marketdata_pipeline.lib.postgres.arrow import read_candle_window
from marketdata_pipeline.lib.postgres.database import PostgresDatabase, ensure_schema
from marketdata_pipeline.lib.postgres.ddl import SCHEMA
from marketdata_pipeline.lib.postgres.store import read_slice, write_batch

# Re-exported for callers that only need the store's bulk functions.
__all__ = ["PostgresCandleIOManager", "read_slice", "write_batch"]


def add_run_metadata(context: dg.OutputContext, metadata: dict[str, Any]) -> None:
    """Put what describes the whole run on the run's *last* partition only.

    Dagster copies an output's metadata onto every partition's materialisation of a range run:
    3,653 copies of the same run-wide counts for a ten-year backfill, each stored and read
    again, and each suggesting the numbers were that partition's. Each partition carries its
    own `dagster/partition_row_count` (the asset adds it); the run's figures and the table's
    `dagster/row_count` go to the newest partition,
    the one the asset's page shows first. A run of one partition (or none) has them as usual.
    """
    keys = context.asset_partition_keys if context.has_asset_partitions else []
    if len(keys) > 1:
        try:
            step = context.step_context
        except dg.DagsterInvariantViolationError:
            step = None  # a context built by hand (`build_output_context`) has no step
        if step is not None:
            # The step context's per-partition metadata is read when Dagster builds the
            # materialisations, just after `handle_output` returns.
            step.add_asset_metadata(metadata, partition_key=max(keys))
            return
    context.add_output_metadata(metadata)


@dataclass(frozen=True)
class Written:
    """What one write did: the store's counts, the table's rows after it, its duration."""

    counts: dict[str, int]
    table_rows: int
    seconds: float

    def describe(self, table: str, batch: CandleBatch) -> str:
        """One log line for the write."""
        counts = self.counts
        return (
            f"{SCHEMA}.{table}: replaced {counts['deleted']} rows with {counts['inserted']} "
            f"for {len(batch.symbols)} symbols, {batch.window}, "
            f"{counts['quarantined']} quarantined, in {self.seconds:.2f}s"
        )


class PostgresCandleIOManager(dg.ConfigurableIOManager):
    """Stores candle assets in `marketdata.<asset name>` and loads them back as polars frames.

    The one persistence step of the candle assets: it takes a `CandleBatch` (which says the
    slice it replaces, its rows, and the kind of source that answered) and hands it to the
    store's one write function (`store.write_batch`): the store's source claim is checked, the
    slice replaced, the rejects quarantined and every symbol's status recorded, in one
    transaction.
    """

    database: PostgresDatabase

    def handle_output(self, context: dg.OutputContext, obj: CandleBatch) -> None:
        """Replace the run's slice of the asset's table with `obj`, in one transaction."""
        table = context.asset_key.path[-1]
        if not isinstance(obj, CandleBatch):
            raise TypeError(
                f"{table}: the candle IO manager stores a CandleBatch (window, symbols, source "
                f"and rows), got {type(obj).__name__}"
            )
        written = self.store(table, obj)
        counts, seconds = written.counts, written.seconds
        context.log.info(written.describe(table, obj))
        add_run_metadata(
            context,
            {
                "dagster/table_name": f"{SCHEMA}.{table}",
                # The table's rows: what the asset's overview in the UI shows as its row count.
                "dagster/row_count": written.table_rows,
                "run_rows_inserted": counts["inserted"],
                "run_rows_replaced": counts["deleted"],
                "run_rows_quarantined": counts["quarantined"],
                "write_seconds": round(seconds, 3),
            },
        )

    def store(self, table: str, batch: CandleBatch) -> Written:
        """Write `batch` into `marketdata.<table>` (`store.write_batch`, one transaction): the
        persistence step of the candle assets' Outputs and of the split repair alike."""
        began = time.perf_counter()
        try:
            with self.database.connect() as conn:
                counts = write_batch(conn, table, batch)
        except psycopg.OperationalError as exc:
            # Postgres went away mid-write (stopped, crashed, network). Say what that means
            # for the data instead of surfacing a bare driver message.
            reason = " ".join(str(exc).split())
            raise MarketdataError(
                f"writing {SCHEMA}.{table} {batch.window} for {len(batch.symbols)} symbols "
                f"failed: the database connection was lost ({reason}). The write is one "
                "transaction: the slice keeps its previous rows (or, only if the commit itself "
                "got through, all of the new ones); rerun to fill it."
            ) from exc
        # The whole table, beside each partition's own row count: what the store holds.
        return Written(counts, counts["table_rows"], time.perf_counter() - began)

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        """The upstream asset's rows for the downstream partition window, all symbols, in the
        candle schema (read through the Arrow driver, as `marketdata_pipeline.read` does)."""
        table = context.asset_key.path[-1]
        url = self.database.resolved_url()
        ensure_schema(url)
        if not context.has_asset_partitions:
            return read_candle_window(url, table)
        window = CandleWindow.from_time_window(context.asset_partitions_time_window)
        return read_candle_window(
            url, table, start=window.first, end_exclusive=window.end_exclusive
        )
