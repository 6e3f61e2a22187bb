"""The `ticker_reference` asset: the vendor's ticker reference as securities and intervals.

Not partitioned: it is one whole-market load (the ticker list, listed and delisted, and the
ticker-change events of renamed securities; after the first, only what changed), done at most
once a day per store, whatever the number of runs; and, with or without a rule, the security of
each tracked ticker the store has none for, asked once a ticker (`identity_tracked`). Every
stock run includes it, and the stock candles do both themselves first when needed
(`defs/candles/identity_first.py`: Dagster does not order steps without a dependency, and a
dependency would make the UI ask to materialise it before the candles), so a run's tickers
follow renames and the rules see today's listings and delistings.
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from marketdata_pipeline.defs.candles.identity_first import identify_pending
from marketdata_pipeline.defs.candles.jobs import STOCK_CANDLES_JOB
from marketdata_pipeline.defs.reference.names import (
    GROUP,
    TICKER_REFERENCE,
    TICKER_REFERENCE_KEY,
    TICKER_SWITCHES,
)
from marketdata_pipeline.lib.identity_changes import RECONCILE_PAGES
from marketdata_pipeline.lib.identity_load import load_identity
from marketdata_pipeline.lib.identity_switches import recheck_switches
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.securities import AmbiguousOwnership
from marketdata_pipeline.lib.postgres.universe import list_rules

NEW_YORK = ZoneInfo("America/New_York")


class TickerReferenceConfig(dg.Config):
    """Run config of `ticker_reference`."""

    force: bool = Field(
        default=False, description="Load again even when it was already loaded today."
    )
    reconcile_pages: int = Field(
        default=RECONCILE_PAGES,
        ge=0,
        description="Pages of the listed tickers a daily load re-reads in ticker order (a "
        "rolling reconciliation: a change the vendor back-dated is found within "
        "ceil(listed / 1000 / pages) days); 0: none.",
    )


def build_reference_assets(start_date: dt.date) -> tuple[dg.AssetsDefinition, ...]:
    """`ticker_reference`, whose intervals start no earlier than `start_date` when the vendor
    cannot date them."""

    @dg.asset(
        name=TICKER_REFERENCE,
        group_name=GROUP,
        kinds={"polygon", "postgres"},
        metadata={"dagster/table_name": "marketdata.ticker_history"},
    )
    def ticker_reference(
        context: dg.AssetExecutionContext,
        config: TickerReferenceConfig,
        polygon: PolygonResource,
        database: PostgresDatabase,
    ) -> dg.MaterializeResult:
        """US stock securities and the days each traded under each ticker, in
        `marketdata.securities` and `marketdata.ticker_history`.

        The first load reads the ticker list (listed and delisted: ceil(tickers / 1000)
        requests) and the ticker-change events of renamed securities and reused tickers (one
        request each); later loads, at most once a day per store, read only what changed since
        the last one (listed and delisted rows newest first down to its watermarks, and one
        page of rolling reconciliation: 3 requests, plus one per renamed security; `force`
        reads everything again). Switch dates are
        cross-checked against the stored bars (the vendor's event dates can be days off). A
        load that would give one ticker two owners on one day fails, naming both, and leaves
        the stored identity as it was. A tracked ticker still without a security (typed by
        hand with no rule, or absent from the list) gets its own from its ticker details and
        ticker events, once a ticker (2 requests, 3 when renamed away).
        """
        today = dt.datetime.now(NEW_YORK).date()
        with database.connect() as conn:
            no_rule = context.job_name == STOCK_CANDLES_JOB and not list_rules(conn)
        if no_rule:
            # Without a rule a stock run needs no vendor list: the tracked tickers are the
            # universe, each identified on its own once (materialising this asset itself
            # loads the list whatever the rules).
            made = _identify(context, polygon, database)
            context.log.info("ticker_reference: no tracking rule, no ticker list loaded")
            return dg.MaterializeResult(
                metadata={"skipped_no_rule": True, "requests": 0, **_kinds(made)}
            )
        client = polygon.get_client()
        with database.connect() as conn:
            try:
                result = load_identity(
                    client,
                    conn,
                    floor=start_date,
                    today=today,
                    force=config.force,
                    reconcile_pages=config.reconcile_pages,
                )
            except AmbiguousOwnership as exc:
                raise dg.Failure(f"ticker_reference: {exc}") from None
        # Tracked tickers the list lacks (grouped daily carries thousands) get theirs too.
        made = _identify(context, polygon, database)
        if result.skipped:
            context.log.info("ticker_reference: already loaded today, no request made")
        else:
            context.log.info(
                f"ticker_reference: {result.securities} securities, {result.intervals} ticker "
                f"intervals in {result.requests} requests"
                + (" (only what changed since the last load)" if result.mode == "changes" else "")
            )
        return dg.MaterializeResult(metadata={**result.as_metadata(), **_kinds(made)})

    @dg.asset(
        name=TICKER_SWITCHES,
        group_name=GROUP,
        kinds={"postgres"},
        deps=[
            TICKER_REFERENCE_KEY,
            # The switches are rechecked after each stock run's candles are stored, so they
            # follow the newest partition. The default for an unpartitioned asset (all
            # partitions) made every run enumerate every NYSE session since the start date
            # for Dagster's input data versions (about 0.15-0.4 s of a one-day run).
            dg.AssetDep("stock_daily_candles", partition_mapping=dg.LastPartitionMapping()),
        ],
    )
    def ticker_switches(
        context: dg.AssetExecutionContext, database: PostgresDatabase
    ) -> dg.MaterializeResult:
        """Confirms each ticker switch in `marketdata.ticker_history` against the stored bars.

        Runs after the stock candles of a run are stored and makes no request: where the bars
        show the new ticker starting on another day than the vendor's event says (its dates
        can be days off), the switch moves to the first bar under the new ticker.
        """
        with database.connect() as conn:
            try:
                moved = recheck_switches(conn)
            except AmbiguousOwnership as exc:
                raise dg.Failure(f"ticker_switches: {exc}") from None
        if moved:
            context.log.info(f"ticker_switches: moved by stored bars: {', '.join(moved)}")
        return dg.MaterializeResult(metadata={"moved": ", ".join(moved[:20]), "requests": 0})

    def _identify(
        context: dg.AssetExecutionContext, polygon: PolygonResource, database: PostgresDatabase
    ) -> dict[str, int]:
        try:
            return identify_pending(context.log, polygon, database, start_date, None)
        except AmbiguousOwnership as exc:
            raise dg.Failure(f"ticker_reference: {exc}") from None

    return (ticker_reference, ticker_switches)


def _kinds(made: dict[str, int]) -> dict[str, object]:
    """The identity requests by kind, as metadata (`reference_requests`, read by the
    backfill's summary)."""
    return {"reference_requests": dg.MetadataValue.json(made)} if made else {}
