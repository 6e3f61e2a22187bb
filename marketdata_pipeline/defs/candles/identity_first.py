"""What a stock run does before choosing its tickers: the identity they are chosen through.

- Tracking rules expand through the ticker reference: it is loaded first when it was not
  loaded today (at most once a day per store; the `ticker_reference` step of the same run then
  finds it done).
- A tracked ticker the store holds no security for (typed by hand, no rule; or one the
  vendor's list lacks) is identified on its own, once (`identity_tracked`): tracking FB then
  fetches META after the rename, in the daily runs and in the sensor's history runs alike.

The tickers are identified under the store-wide lock of their kind, so two steps or runs
starting together pay once between them. Returns the requests made by kind, for the run's summary.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from marketdata_pipeline.lib.calendar import NEW_YORK
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.identity_load import ensure_loaded
from marketdata_pipeline.lib.identity_tracked import (
    IDENTITY_KIND,
    identify_tracked,
    pending_tickers,
)
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.reference_refresh import refresh_lock
from marketdata_pipeline.lib.postgres.securities import AmbiguousOwnership
from marketdata_pipeline.lib.symbols import AssetClass, canonical_case

#: How the summary names the ticker-list requests (as the `ticker_reference` asset's).
TICKERS = "tickers"


def ensure_identity(
    context: dg.AssetExecutionContext,
    polygon: PolygonResource,
    database: PostgresDatabase,
    window: CandleWindow,
    symbols: list[str] | None,
    *,
    tracked: bool = True,
) -> dict[str, int]:
    """Load what the run's tickers are chosen through (see the module docstring): the ticker
    reference for the rules (runs without `symbols`) and, with `tracked` (not a rule's
    history run), the security of each pending tracked ticker (of `symbols` when given).
    Returns the requests made, by kind."""
    if symbols is not None:
        # As tracked_symbols stores them (an invalid one is reported by the run, not here).
        symbols = [canonical_case(s, AssetClass.STOCK) for s in symbols]
    first = context.assets_def.partitions_def.get_first_partition_key()
    floor = dt.date.fromisoformat(first)
    today = dt.datetime.now(NEW_YORK).date()
    made: dict[str, int] = {}
    try:
        if symbols is None:
            with database.connect() as conn:
                loaded = ensure_loaded(polygon.get_client, conn, floor=floor, today=today)
            if loaded is not None:
                made[TICKERS] = loaded.requests
                context.log.info(
                    f"ticker reference loaded for the tracking rules: {loaded.securities} "
                    f"securities in {loaded.requests} requests"
                )
        if tracked:
            made.update(
                identify_pending(context.log, polygon, database, floor, window.first, symbols)
            )
    except AmbiguousOwnership as exc:
        raise dg.Failure(f"ticker reference: {exc}") from None
    return made


def identify_pending(
    log: Any,
    polygon: PolygonResource,
    database: PostgresDatabase,
    floor: dt.date,
    first_day: dt.date | None,
    symbols: list[str] | None = None,
) -> dict[str, int]:
    """Identify the pending tracked tickers (of `symbols`, when given) under the store-wide
    lock, logging each outcome; the requests made by kind (nothing when none is pending)."""
    today = dt.datetime.now(NEW_YORK).date()
    with database.connect() as conn:
        if not pending_tickers(conn, symbols):
            return {}
    with refresh_lock(database.resolved_url(), IDENTITY_KIND), database.connect() as conn:
        # Another step or run may have identified them while this one waited for the lock.
        if not pending_tickers(conn, symbols):
            return {}
        result = identify_tracked(
            polygon.get_client(), conn, floor=floor, today=today, first_day=first_day, only=symbols
        )
    for line in result.identified:
        log.info(f"security of a tracked ticker: {line}")
    for line in result.problems():
        log.warning(line)
    return result.requests
