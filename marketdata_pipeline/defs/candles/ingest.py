"""What a candle asset does for one run: symbols -> plan -> fetch -> validate -> Output.

Shared by `stock_daily_candles` and `crypto_daily_candles`; the asset class is the only
difference. The order matters: every check is evaluated on the batch *before* `Output`, and a
structural failure raises there, because in Dagster 1.13 a failed blocking check does not stop
the IO manager from writing (verified on Dagster 1.13.27: only raising before `Output` keeps the
rows out).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from marketdata_pipeline.defs.candles import checks
from marketdata_pipeline.defs.candles.identity_first import ensure_identity
from marketdata_pipeline.defs.candles.partition_metadata import (
    record_partition_row_counts,
    run_metadata_partition,
)
from marketdata_pipeline.lib.candles.accumulator import CandleAccumulator
from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.quality import DEFAULT_JUMP_THRESHOLD
from marketdata_pipeline.lib.candles.spool import CandleSpool
from marketdata_pipeline.lib.candles.validation import StructuralReport
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.polygon.errors import PolygonError
from marketdata_pipeline.lib.polygon.planner import DEFAULT_CHUNK_ROWS
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.store import stored_counts
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols, record_failures
from marketdata_pipeline.lib.postgres.universe import rule_symbols, universe_symbols
from marketdata_pipeline.lib.symbols import AssetClass, Symbol, parse_symbol


class CandleConfig(dg.Config):
    """Run configuration of a candle asset (all optional)."""

    symbols: list[str] | None = Field(
        default=None,
        description="Only these symbols (e.g. AAPL, X:BTCUSD). Default: every active tracked "
        "symbol of the asset's class in marketdata.tracked_symbols.",
    )
    rules: list[int] | None = Field(
        default=None,
        description="Stocks only, instead of symbols: the tickers these tracking rules "
        "(marketdata.tracking_rules ids) expand to in the window, and nothing else (the "
        "sensor's history run for a new rule).",
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
    invalid: dict[str, str] = {}
    if config.rules is not None:
        if asset_class is not AssetClass.STOCK or config.symbols is not None:
            raise dg.Failure("run config rules: stock runs only, and not with symbols")
        if window is None:
            return [], invalid
        with database.connect() as conn:
            chosen = rule_symbols(conn, config.rules, window.first, window.last)
        return sorted(set(chosen)), invalid
    if config.symbols is not None:
        chosen: list[Symbol] = []
        for raw in config.symbols:
            try:
                sym = parse_symbol(raw, asset_class)
            except InputError as exc:
                raise dg.Failure(f"run config symbols: {exc}") from None
            chosen.append(sym)
        with_rules = False
    else:
        with database.connect() as conn:
            chosen, invalid = active_symbols(conn, asset_class)
        with_rules = True
    if asset_class is AssetClass.STOCK and window is not None:
        with database.connect() as conn:
            chosen = universe_symbols(conn, chosen, window.first, window.last, rules=with_rules)
    return sorted(set(chosen)), invalid


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
    reference: dict[str, int] = {}
    if asset_class is AssetClass.STOCK:
        reference = ensure_identity(
            context, polygon, database, partitions, config.symbols, tracked=config.rules is None
        )
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
        rows = CandleAccumulator(asset, asset_class, config.jump_threshold, spool=spool)
        fetch = _RunFetch(reference_requests=reference)
        yield from _fetch_into(
            context, config, polygon, database, rows, fetch, window, symbols, invalid
        )
        yield from _emit(context, polygon, database, rows, fetch, window, len(symbols), invalid)


@dataclass
class _RunFetch:
    """What a run's requests produced besides its rows: errors, pages, the plan, the counts."""

    errors: dict[str, str] = field(default_factory=dict)
    cache_keys: list[str] = field(default_factory=list)
    requests: dict = field(default_factory=dict)
    requests_made: int = 0
    run_plan: Any = None
    #: Reference requests the run made before choosing its tickers, by kind (identity_first).
    reference_requests: dict[str, int] = field(default_factory=dict)


def _fetch_into(
    context: dg.AssetExecutionContext,
    config: CandleConfig,
    polygon: PolygonResource,
    database: PostgresDatabase,
    rows: CandleAccumulator,
    fetch: _RunFetch,
    window: CandleWindow,
    symbols: list[Symbol],
    invalid: dict[str, str],
) -> Iterator[dg.AssetCheckResult]:
    """Fetch the run chunk by chunk into `rows`; a structural failure fails the run here,
    before any Output (nothing written)."""
    strategy = None if config.strategy == "auto" else config.strategy
    for chunk in polygon.fetch_chunks(
        rows.asset_class,
        symbols,
        window,
        log=context.log,
        force_strategy=strategy,
        chunk_rows=config.rows_per_chunk,
    ):
        fetch.run_plan = chunk.run_plan or chunk.plan
        fetch.requests = chunk.requests
        fetch.requests_made += int(chunk.requests.get("requests", 0))
        fetch.errors.update(chunk.errors)
        fetch.cache_keys.extend(chunk.cache_keys)
        if chunk.fails_the_run:
            # Nothing of the run is written; the days that did arrive stay cached for the rerun.
            rows.discard()
            fetch.cache_keys.clear()
            return
        grouped = chunk.plan.strategy == "grouped"
        report = rows.add(
            chunk.frame,
            start=chunk.plan.start if grouped else window.first,
            end=chunk.plan.end if grouped else window.last,
            symbols=chunk.fetched,
        )
        if not report.passed:
            yield checks.structural_result(report)
            message = "structural validation failed, nothing written: " + "; ".join(report.problems)
            # The pages behind the bad chunk must not be reused: a rerun asks the API again
            # for them (the earlier chunks' pages stay for the rerun).
            polygon.forget_pages(chunk.cache_keys)
            failed = {**dict.fromkeys(symbols_of(symbols), message), **fetch.errors}
            failed.update({s: f"invalid tracked symbol: {why}" for s, why in invalid.items()})
            # Nothing is written, so the failures are recorded on their own.
            with database.connect() as conn:
                record_failures(conn, rows.asset_class, failed)
            raise dg.Failure(
                description=f"{rows.asset} {window}: {message}",
                metadata={"problems": dg.MetadataValue.json(report.problems)},
            )
        del chunk


def _emit(
    context: dg.AssetExecutionContext,
    polygon: PolygonResource,
    database: PostgresDatabase,
    rows: CandleAccumulator,
    fetch: _RunFetch,
    window: CandleWindow,
    requested: int,
    invalid: dict[str, str],
) -> Iterator[dg.AssetCheckResult | dg.Output]:
    """The run's checks and its one Output (the IO manager writes it)."""
    asset = rows.asset

    def counts(symbols: Sequence[str]) -> Mapping[str, int]:
        with database.connect() as conn:
            return stored_counts(conn, asset, window, symbols)

    kept = rows.empty_answers(window, counts)
    fetched = rows.written(kept)
    errors = {
        **{s: f"invalid tracked symbol: {why}" for s, why in invalid.items()},
        **fetch.errors,
        **kept,
    }
    rejected = rows.rejected()
    # Who answered (the client saw it in the answers), not what the rows say: the write claims
    # the store for it, or is refused when the store holds the other kind.
    try:
        source_family = polygon.source_family()
    except PolygonError as exc:
        raise dg.Failure(description=f"{asset} {window}: {exc}") from None

    spool = rows.candles
    assert isinstance(spool, CandleSpool)
    yield checks.structural_result(StructuralReport())
    yield checks.fetch_result(requested + len(invalid), errors)
    yield from checks.quality_results_of(rows.tally, rejected)
    record_partition_row_counts(context, spool.rows_per_day)
    per_symbol = sorted(spool.rows_per_symbol.items())[:50]
    run_plan = fetch.run_plan
    run_metadata = {
        # What the whole run did: on its last partition only (`run_metadata_partition`), since
        # Dagster would copy an Output's metadata onto every partition of a range.
        "run_rows": spool.rows,
        "window": str(window),
        "symbols": len(fetched),
        "symbols_failed": ", ".join(sorted(errors)[:20]),
        "rows_per_symbol": dg.MetadataValue.json(dict(per_symbol)),
        "plan": dg.MetadataValue.json(run_plan.as_metadata() if run_plan else {}),
        "requests": dg.MetadataValue.json({**fetch.requests, "requests": fetch.requests_made}),
        "requests_made": fetch.requests_made,
        "reference_requests": dg.MetadataValue.json(fetch.reference_requests),
        "run_rows_rejected": rejected.height,
        "spooled_chunks": spool.chunks,
    }
    last = run_metadata_partition(context)
    if last is not None:
        context.add_asset_metadata(run_metadata, partition_key=last)
    yield dg.Output(
        CandleBatch(
            asset_class=rows.asset_class,
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
    polygon.forget_pages(fetch.cache_keys)


def symbols_of(symbols: list[Symbol]) -> list[str]:
    """Canonical names of `symbols`."""
    return [s.symbol for s in symbols]
