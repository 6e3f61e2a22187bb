"""What a candle asset does for one run: symbols -> plan -> fetch -> validate -> Output.

Shared by `stock_daily_candles` and `crypto_daily_candles`; the asset class is the only
difference. The order matters: every check is evaluated on the batch *before* `Output`, and a
structural failure raises there, because in Dagster 1.13 a failed blocking check does not stop
the IO manager from writing (reference/dagster_notes.md section 3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Literal

import dagster as dg
import polars as pl
from psycopg import sql
from pydantic import Field

from marketdata_pipeline.defs.candles import checks
from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.quality import DEFAULT_JUMP_THRESHOLD
from marketdata_pipeline.lib.candles.schema import CANDLE_SQL_TYPES
from marketdata_pipeline.lib.candles.validation import (
    check_structure,
    drop_helper_columns,
    quarantine,
)
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.polygon.resource import FetchResult, PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import read_slice
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols, record_failures
from marketdata_pipeline.lib.symbols import AssetClass, Symbol, parse_symbol


class CandleConfig(dg.Config):
    """Run configuration of a candle asset (all optional)."""

    symbols: list[str] | None = Field(
        default=None,
        description="Only these symbols (e.g. AAPL, X:BTCUSD). Default: every active tracked "
        "symbol of the asset's class in marketdata.tracked_symbols.",
    )
    strategy: Literal["auto", "range", "grouped"] = Field(
        default="auto",
        description="Request plan: 'auto' picks the cheapest; 'range'/'grouped' force one.",
    )
    jump_threshold: float = Field(
        default=DEFAULT_JUMP_THRESHOLD,
        description="Close-to-close move (fraction) above which price_jumps warns.",
    )


def column_schema() -> dg.TableSchema:
    """The table's columns for the Dagster UI (`dagster/column_schema`)."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                sqltype.split(" NOT NULL")[0].split(" DEFAULT")[0],
                constraints=dg.TableColumnConstraints(nullable="NOT NULL" not in sqltype),
            )
            for name, sqltype in CANDLE_SQL_TYPES.items()
        ],
        constraints=dg.TableConstraints(other=["PRIMARY KEY (symbol, day)"]),
    )


def resolve_symbols(
    config: CandleConfig, asset_class: AssetClass, database: PostgresDatabase
) -> tuple[list[Symbol], dict[str, str]]:
    """The symbols this run fetches, plus tracked rows that are invalid (symbol -> reason)."""
    if config.symbols is not None:
        chosen: list[Symbol] = []
        for raw in config.symbols:
            try:
                sym = parse_symbol(raw, asset_class)
            except InputError as exc:
                raise dg.Failure(f"run config symbols: {exc}") from None
            chosen.append(sym)
        return sorted(set(chosen)), {}
    with database.connect() as conn:
        return active_symbols(conn, asset_class)


def run_window(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) of the run's partition range."""
    window = context.partition_time_window
    return window.start.date(), window.end.date() - dt.timedelta(days=1)


def stored_rows_of_empty_symbols(
    database: PostgresDatabase,
    asset: str,
    fetched: list[str],
    frame_symbols: set[str],
    start: dt.date,
    end: dt.date,
) -> dict[str, int]:
    """Symbols the API answered with no bars at all, that have rows stored in the window.

    Polygon has served transient empty results under load (reference/polygon_api.md
    section 8.4). Replacing the slice with such an answer would delete good history, so the
    caller treats these symbols as failed instead and keeps their rows.
    """
    empty = sorted(set(fetched) - frame_symbols)
    if not empty:
        return {}
    with database.connect() as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT symbol, count(*) FROM {} WHERE day BETWEEN %s AND %s"
                " AND symbol = ANY(%s) GROUP BY symbol"
            ).format(sql.Identifier("marketdata", asset)),
            (start, end, empty),
        ).fetchall()
    return {symbol: count for symbol, count in rows}


def keep_unserved_rows(
    database: PostgresDatabase, asset: str, result: FetchResult, start: dt.date
) -> None:
    """Add the stored rows of days the API plan does not serve to `result.frame`, unchanged.

    Days before the plan's history start are never requested, but the run still replaces its
    whole window: carrying their stored rows through keeps history fetched earlier (for example
    under a bigger plan) instead of deleting it.
    """
    unserved = result.plan.unserved_days
    if not unserved or not result.fetched:
        return
    before = result.plan.history_start or unserved[-1] + dt.timedelta(days=1)
    with database.connect() as conn:
        kept = read_slice(
            conn, table=asset, start=start, end_exclusive=before, symbols=result.fetched
        )
    if kept.height:
        kept = kept.with_columns(t_aligned=pl.lit(True))
        result.frame = pl.concat([result.frame, kept.select(result.frame.columns)])


def materialise_candles(
    context: dg.AssetExecutionContext,
    config: CandleConfig,
    asset_class: AssetClass,
    polygon: PolygonResource,
    database: PostgresDatabase,
) -> Iterator[dg.AssetCheckResult | dg.Output]:
    """Fetch, validate and emit one run's candles for `asset_class` (see module docstring)."""
    asset = context.asset_key.path[-1]
    start, end = run_window(context)
    symbols, invalid = resolve_symbols(config, asset_class, database)
    context.log.info(f"{asset}: {len(symbols)} symbols, {start}..{end}")
    strategy = None if config.strategy == "auto" else config.strategy
    result = polygon.fetch_candles(
        asset_class, symbols, start, end, log=context.log, force_strategy=strategy
    )
    keep_unserved_rows(database, asset, result, start)
    errors = {
        **{s: f"invalid tracked symbol: {why}" for s, why in invalid.items()},
        **result.errors,
    }
    returned = set(result.frame.get_column("symbol").unique().to_list())
    for symbol, count in stored_rows_of_empty_symbols(
        database, asset, result.fetched, returned, start, end
    ).items():
        result.fetched.remove(symbol)
        errors[symbol] = (
            f"{symbol} {start}..{end}: the API answered with no bars, but {count} rows are "
            "stored for this window; they were kept (a transient empty answer?). Rerun later."
        )

    candles = drop_helper_columns(result.frame)
    report = check_structure(candles, start=start, end=end, symbols=result.fetched)
    if not report.passed:
        yield checks.structural_result(report)
        message = "structural validation failed, nothing written: " + "; ".join(report.problems)
        with database.connect() as conn:
            record_failures(conn, asset_class, {**dict.fromkeys(result.fetched, message), **errors})
        raise dg.Failure(
            description=f"{asset} {start}..{end}: {message}",
            metadata={"problems": dg.MetadataValue.json(report.problems)},
        )
    good, rejected = quarantine(result.frame, asset=asset)
    if errors:
        with database.connect() as conn:
            record_failures(conn, asset_class, errors)

    yield checks.structural_result(report)
    yield checks.fetch_result(len(symbols) + len(invalid), errors)
    yield from checks.quality_results(
        candles=good,
        rejected=rejected,
        asset_class=asset_class,
        start=start,
        end=end,
        symbols=result.fetched,
        jump_threshold=config.jump_threshold,
    )
    per_symbol = good.group_by("symbol").len().sort("symbol")
    yield dg.Output(
        CandleBatch(
            asset_class=asset_class,
            start=start,
            end=end,
            symbols=tuple(result.fetched),
            candles=good,
            rejected=rejected,
        ),
        metadata={
            # Dagster copies this metadata onto every partition of a single-run range, so it
            # stays small: the column schema lives on the asset definition instead.
            "dagster/row_count": good.height,
            "window": f"{start}..{end}",
            "symbols": len(result.fetched),
            "symbols_failed": ", ".join(sorted(errors)[:20]),
            "rows_per_symbol": dg.MetadataValue.json(dict(per_symbol.head(50).iter_rows())),
            "plan": dg.MetadataValue.json(result.plan.as_metadata()),
            "requests": dg.MetadataValue.json(result.requests),
            "requests_made": int(result.requests.get("requests", 0)),
            "rows_rejected": rejected.height,
        },
    )
