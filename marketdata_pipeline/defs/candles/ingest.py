"""What a candle asset does for one run: symbols -> plan -> fetch -> validate -> Output.

Shared by `stock_daily_candles` and `crypto_daily_candles`; the asset class is the only
difference. The order matters: every check is evaluated on the batch *before* `Output`, and a
structural failure raises there, because in Dagster 1.13 a failed blocking check does not stop
the IO manager from writing (verified on Dagster 1.13.27: only raising before `Output` keeps the
rows out).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Literal

import dagster as dg
import polars as pl
from pydantic import Field

from marketdata_pipeline.defs.candles import checks
from marketdata_pipeline.lib.calendar import NEW_YORK
from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.quality import DEFAULT_JUMP_THRESHOLD
from marketdata_pipeline.lib.candles.schema import empty_rejected
from marketdata_pipeline.lib.candles.spool import CandleSpool
from marketdata_pipeline.lib.candles.tally import QualityTally
from marketdata_pipeline.lib.candles.validation import (
    StructuralReport,
    check_structure,
    drop_helper_columns,
    quarantine,
)
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.dagster_private import AssetMetadataHandle, OutputMetadataAccumulator
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.identity_load import ensure_loaded
from marketdata_pipeline.lib.polygon.errors import PolygonError
from marketdata_pipeline.lib.polygon.planner import DEFAULT_CHUNK_ROWS
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.securities import AmbiguousOwnership
from marketdata_pipeline.lib.postgres.store import stored_counts
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols, record_failures
from marketdata_pipeline.lib.postgres.universe import universe_symbols
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
    rows_per_chunk: int = Field(
        default=DEFAULT_CHUNK_ROWS,
        ge=1,
        description="Bars fetched, validated and spooled to disk at a time (memory bound).",
    )


def resolve_symbols(
    config: CandleConfig,
    asset_class: AssetClass,
    database: PostgresDatabase,
    window: CandleWindow | None = None,
) -> tuple[list[Symbol], dict[str, str]]:
    """The symbols this run fetches, plus tracked rows that are invalid (symbol -> reason).

    For stocks in `window`, the chosen tickers follow their companies (tracking FB fetches
    META after the rename) and the tracking rules add every ticker they expand to there.
    """
    if config.symbols is not None:
        chosen: list[Symbol] = []
        for raw in config.symbols:
            try:
                sym = parse_symbol(raw, asset_class)
            except InputError as exc:
                raise dg.Failure(f"run config symbols: {exc}") from None
            chosen.append(sym)
        invalid: dict[str, str] = {}
        with_rules = False
    else:
        with database.connect() as conn:
            chosen, invalid = active_symbols(conn, asset_class)
        with_rules = True
    if asset_class is AssetClass.STOCK and window is not None:
        with database.connect() as conn:
            chosen = universe_symbols(conn, chosen, window.first, window.last, rules=with_rules)
    return sorted(set(chosen)), invalid


def _ensure_reference(
    context: dg.AssetExecutionContext, polygon: PolygonResource, database: PostgresDatabase
) -> None:
    """Tracking rules expand through the ticker reference: load it first when it was not
    loaded today (at most once a day per store; the `ticker_reference` step of the same run
    then finds it done)."""
    first = context.assets_def.partitions_def.get_first_partition_key()
    today = dt.datetime.now(NEW_YORK).date()
    with database.connect() as conn:
        try:
            loaded = ensure_loaded(
                polygon.get_client, conn, floor=dt.date.fromisoformat(first), today=today
            )
        except AmbiguousOwnership as exc:
            raise dg.Failure(f"ticker reference: {exc}") from None
    if loaded is not None:
        context.log.info(
            f"ticker reference loaded for the tracking rules: {loaded.securities} securities "
            f"in {loaded.requests} requests"
        )


def empty_answers_with_stored_rows(
    database: PostgresDatabase,
    asset: str,
    window: CandleWindow,
    fetched: list[str],
    frame_symbols: set[str],
) -> dict[str, str]:
    """Symbols the API answered with no bars at all but that have rows stored in the window,
    with the reason they count as failed.

    Polygon has served transient empty results under load. Replacing the slice with such an
    answer would delete good history, so these symbols are failed instead and keep their rows.
    """
    empty = sorted(set(fetched) - frame_symbols)
    if not empty:
        return {}
    with database.connect() as conn:
        counts = stored_counts(conn, asset, window, empty)
    return {
        symbol: (
            f"{symbol} {window}: the API answered with no bars, but {count} rows are stored "
            "for this window; they were kept (a transient empty answer?). Rerun later."
        )
        for symbol, count in counts.items()
    }


def record_partition_row_counts(
    context: dg.AssetExecutionContext, counts: Mapping[dt.date, int]
) -> None:
    """Give each partition of the run its own `dagster/partition_row_count`: the rows written
    for its day (Dagster's key for a partition's rows; `dagster/row_count`, the table's, is on
    the run's newest partition, from the IO manager).

    Dagster copies an Output's metadata onto every partition of a single-run range, so a
    run-wide count there would be false on each of them; per-partition asset metadata is not.
    """
    add_partition_metadata(
        context,
        {
            key: {"dagster/partition_row_count": counts.get(dt.date.fromisoformat(key), 0)}
            for key in context.partition_keys
        },
    )


def add_partition_metadata(
    context: dg.AssetExecutionContext, metadata_by_key: Mapping[str, Mapping[str, object]]
) -> None:
    """`context.add_asset_metadata(metadata, partition_key=key)` for every key of the run, in
    time linear in the keys.

    Dagster's method checks each key against the run's whole partition range and copies every
    entry added so far, on each call: quadratic in a range run's partitions (10.7 s of a 47 s
    twenty-year run for 7,303 partitions). Here the keys are checked once against the run's own
    keys and the step's metadata accumulator is extended once. The Dagster packages are pinned;
    should those internals move, the public method is used, one key at a time.
    """
    run_keys = set(context.partition_keys)
    outside = [key for key in metadata_by_key if key not in run_keys]
    if outside:
        raise ValueError(f"partition keys {outside[:3]} are not partitions of this run")
    step = getattr(context.op_execution_context, "_step_execution_context", None)
    accumulator = getattr(step, "_metadata_accumulator", None)
    if not isinstance(accumulator, OutputMetadataAccumulator):
        for key, metadata in metadata_by_key.items():
            context.add_asset_metadata(dict(metadata), partition_key=key)
        return
    merged = dict(accumulator.per_output_metadata)
    for key, metadata in metadata_by_key.items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=key)
        merged[handle] = {**merged.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=merged)


def run_metadata_partition(context: dg.AssetExecutionContext) -> str | None:
    """The partition that carries the run-wide metadata of a range run (its newest), or None
    when the run has at most one partition (then the Output carries it, as usual)."""
    keys = context.partition_keys if context.has_partition_key_range else []
    return max(keys) if len(keys) > 1 else None


def materialise_candles(
    context: dg.AssetExecutionContext,
    config: CandleConfig,
    asset_class: AssetClass,
    polygon: PolygonResource,
    database: PostgresDatabase,
) -> Iterator[dg.AssetCheckResult | dg.Output]:
    """Fetch, validate and emit one run's candles for `asset_class` (see module docstring).

    The run is fetched in chunks (`PolygonResource.fetch_chunks`); each chunk is validated on
    its own and its good rows spooled to local disk, so memory follows the chunk, not the run.
    A structural problem in any chunk fails the run before `Output`: nothing is written.
    """
    asset = context.asset_key.path[-1]
    partitions = CandleWindow.of(context)
    if asset_class is AssetClass.STOCK and config.symbols is None:
        _ensure_reference(context, polygon, database)
    symbols, invalid = resolve_symbols(config, asset_class, database, partitions)
    context.log.info(f"{asset}: {len(symbols)} symbols, {partitions}")
    # The run replaces only the days the key's plan serves: earlier stored history is kept.
    served = polygon.served_window(partitions)
    window = served or partitions
    if served != partitions:
        context.log.warning(
            f"{asset}: days before POLYGON_HISTORY_START {polygon.history_start} are not "
            "requested (the plan does not serve them) and their stored rows are kept"
        )
    if served is None:
        symbols = []
    with CandleSpool(polygon.spool_dir) as spool:
        yield from _fetch_validate_emit(
            context, config, asset_class, polygon, database, spool, window, symbols, invalid
        )


def _fetch_validate_emit(
    context: dg.AssetExecutionContext,
    config: CandleConfig,
    asset_class: AssetClass,
    polygon: PolygonResource,
    database: PostgresDatabase,
    spool: CandleSpool,
    window: CandleWindow,
    symbols: list[Symbol],
    invalid: dict[str, str],
) -> Iterator[dg.AssetCheckResult | dg.Output]:
    """The body of `materialise_candles`, chunk by chunk into `spool`."""
    asset = context.asset_key.path[-1]
    strategy = None if config.strategy == "auto" else config.strategy
    tally = QualityTally(asset_class, config.jump_threshold)
    rejected_chunks: list[pl.DataFrame] = []
    fetched_all: set[str] = set()
    fetch_errors: dict[str, str] = {}
    cache_keys: list[str] = []
    requests: dict = {}
    requests_made = 0
    run_plan = None
    grouped_failed = False
    for chunk in polygon.fetch_chunks(
        asset_class,
        symbols,
        window,
        log=context.log,
        force_strategy=strategy,
        chunk_rows=config.rows_per_chunk,
    ):
        run_plan = chunk.run_plan or chunk.plan
        requests = chunk.requests
        requests_made += int(chunk.requests.get("requests", 0))
        fetch_errors.update(chunk.errors)
        cache_keys.extend(chunk.cache_keys)
        if chunk.plan.strategy == "grouped" and chunk.errors:
            grouped_failed = True  # every symbol failed: nothing of the run is written
            break
        fetched_all.update(chunk.fetched)
        candles = drop_helper_columns(chunk.frame)
        start, end = (
            (chunk.plan.start, chunk.plan.end)
            if chunk.plan.strategy == "grouped"
            else (window.first, window.last)
        )
        report = check_structure(candles, start=start, end=end, symbols=chunk.fetched)
        if not report.passed:
            yield checks.structural_result(report)
            message = "structural validation failed, nothing written: " + "; ".join(report.problems)
            # The pages behind the bad chunk must not be reused: a rerun asks the API again
            # for them (the earlier chunks' pages stay for the rerun).
            polygon.forget_pages(chunk.cache_keys)
            failed = {**dict.fromkeys(symbols_of(symbols), message), **fetch_errors}
            failed.update({s: f"invalid tracked symbol: {why}" for s, why in invalid.items()})
            # Nothing is written, so the failures are recorded on their own.
            with database.connect() as conn:
                record_failures(conn, asset_class, failed)
            raise dg.Failure(
                description=f"{asset} {window}: {message}",
                metadata={"problems": dg.MetadataValue.json(report.problems)},
            )
        good, rejected = quarantine(chunk.frame, asset=asset)
        tally.add(good, start=start, end=end, symbols=chunk.fetched)
        spool.add(good)
        if rejected.height:
            rejected_chunks.append(rejected)
        del candles, good, chunk

    fetched_unique = sorted(fetched_all) if not grouped_failed else []
    if grouped_failed:
        spool.clear()
        rejected_chunks.clear()
        # Nothing of the run is written: the days that did arrive stay cached for the rerun.
        cache_keys.clear()
        tally = QualityTally(asset_class, config.jump_threshold)
    kept = empty_answers_with_stored_rows(database, asset, window, fetched_unique, spool.symbols())
    fetched = [s for s in fetched_unique if s not in kept]
    for symbol in kept:
        tally.missing.pop(symbol, None)
    errors = {
        **{s: f"invalid tracked symbol: {why}" for s, why in invalid.items()},
        **fetch_errors,
        **kept,
    }
    rejected = pl.concat(rejected_chunks, how="vertical") if rejected_chunks else empty_rejected()
    # Who answered (the client saw it in the answers), not what the rows say: the write claims
    # the store for it, or is refused when the store holds the other kind.
    try:
        source_family = polygon.source_family()
    except PolygonError as exc:
        raise dg.Failure(description=f"{asset} {window}: {exc}") from None

    yield checks.structural_result(StructuralReport())
    yield checks.fetch_result(len(symbols) + len(invalid), errors)
    yield from checks.quality_results_of(tally, rejected)
    record_partition_row_counts(context, spool.rows_per_day)
    per_symbol = sorted(spool.rows_per_symbol.items())[:50]
    run_metadata = {
        # What the whole run did: on its last partition only (`run_metadata_partition`), since
        # Dagster would copy an Output's metadata onto every partition of a range.
        "run_rows": spool.rows,
        "window": str(window),
        "symbols": len(fetched),
        "symbols_failed": ", ".join(sorted(errors)[:20]),
        "rows_per_symbol": dg.MetadataValue.json(dict(per_symbol)),
        "plan": dg.MetadataValue.json(run_plan.as_metadata() if run_plan else {}),
        "requests": dg.MetadataValue.json({**requests, "requests": requests_made}),
        "requests_made": requests_made,
        "run_rows_rejected": rejected.height,
        "spooled_chunks": spool.chunks,
    }
    last = run_metadata_partition(context)
    if last is not None:
        context.add_asset_metadata(run_metadata, partition_key=last)
    yield dg.Output(
        CandleBatch(
            asset_class=asset_class,
            window=window,
            symbols=tuple(fetched),
            source_family=source_family,
            candles=spool,
            rejected=rejected,
            failures=errors,
        ),
        metadata=run_metadata if last is None else None,
    )
    # Dagster resumes this generator only after the IO manager stored the Output, so reaching
    # this line means the rows are committed: their cached pages are no longer needed.
    polygon.forget_pages(cache_keys)


def symbols_of(symbols: list[Symbol]) -> list[str]:
    """Canonical names of `symbols`."""
    return [s.symbol for s in symbols]
