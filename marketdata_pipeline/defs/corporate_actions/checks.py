"""The asset checks of the corporate-action assets (all evaluated inside their asset)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import polars as pl

from marketdata_pipeline.lib.candles.corporate_actions import (
    MIN_LOG_RATIO,
    classify_steps,
    split_like_moves,
)
from marketdata_pipeline.lib.polygon.planner import DEFAULT_CHUNK_ROWS
from marketdata_pipeline.lib.postgres.corporate_actions import split_candidate_steps, split_events
from marketdata_pipeline.lib.postgres.database import PostgresDatabase

RECORDS_VALID = "records_valid"
HISTORY_CURRENT = "history_split_adjusted"
SPLIT_VS_MOVE = "split_vs_move"
#: At most this many examples go into a check's metadata.
MAX_EXAMPLES = 20
#: Calendar days read before a run's window, so its first day has a previous bar to compare.
LOOKBEHIND_DAYS = 14


def records_spec(asset: str, kind: str) -> dg.AssetCheckSpec:
    """`records_valid` of `stock_splits` / `stock_dividends`."""
    return dg.AssetCheckSpec(
        RECORDS_VALID,
        asset=asset,
        description=f"Every {kind} record the vendor sent was usable (positive ratio or amount, "
        "dates present, no duplicate key). Unusable ones are left out and listed here.",
    )


def records_result(kind: str, received: int, rejected: list[str]) -> dg.AssetCheckResult:
    """The `records_valid` result of one refresh."""
    return dg.AssetCheckResult(
        check_name=RECORDS_VALID,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(rejected)} of {received + len(rejected)} {kind} records left out"
            if rejected
            else f"all {received} {kind} records usable"
        ),
        metadata={"left_out": len(rejected), "reasons": dg.MetadataValue.json(rejected[:50])},
    )


def records_not_read_result(kind: str, why: str) -> dg.AssetCheckResult:
    """The `records_valid` result of a refresh that read nothing (today's read is on record)."""
    return dg.AssetCheckResult(
        check_name=RECORDS_VALID,
        passed=True,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"no {kind} records read: the whole market's were {why}",
        metadata={"left_out": 0, "read": False},
    )


ADJUSTMENT_SPECS = [
    dg.AssetCheckSpec(
        HISTORY_CURRENT,
        asset="stock_split_adjustments",
        description="After the run, no stored bar of an active tracked stock misses a known "
        "split: every stale span was re-fetched. Blocking: a symbol whose re-fetch failed keeps "
        "its rows, the run is marked failed, and the next run retries it.",
        blocking=True,
    ),
    dg.AssetCheckSpec(
        SPLIT_VS_MOVE,
        asset="stock_split_adjustments",
        description="Close-to-close steps near a split ratio (1/2, 1/3, 2, 3, 1/10, 3/2, ...) in "
        "the run's window with no split event: a possible split the vendor has not recorded. "
        "Steps on a split's execution date are not flagged; a step that does not look like a "
        "split (no matching gap at the open, traded value not steady) is listed as a price move. "
        "Nothing is ever changed.",
    ),
]


def history_result(failed: dict[str, str], repaired: int) -> dg.AssetCheckResult:
    """The `history_split_adjusted` result."""
    return dg.AssetCheckResult(
        check_name=HISTORY_CURRENT,
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{len(failed)} symbols still miss a split: {', '.join(sorted(failed)[:10])}"
            if failed
            else f"history current ({repaired} symbols re-fetched)"
        ),
        metadata={
            "symbols_repaired": repaired,
            "failed": dg.MetadataValue.json(dict(sorted(failed.items())[:MAX_EXAMPLES])),
        },
    )


def _rows(frame: pl.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.json(
        [
            {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}
            for row in frame.head(MAX_EXAMPLES).iter_rows(named=True)
        ]
    )


def symbol_batches(
    symbols: list[str], start: dt.date, end: dt.date, rows_per_chunk: int
) -> list[list[str]]:
    """`symbols` (sorted) in batches whose bars in `start`..`end` fit `rows_per_chunk`.

    A symbol has at most one bar a calendar day, so the window's length in days bounds its
    rows: a batch never holds more than `rows_per_chunk` bars, however long the window.
    """
    per_batch = max(1, rows_per_chunk // ((end - start).days + 1))
    ordered = sorted(set(symbols))
    return [ordered[i : i + per_batch] for i in range(0, len(ordered), per_batch)]


def split_vs_move_result(
    database: PostgresDatabase,
    symbols: list[str],
    start: dt.date,
    end: dt.date,
    *,
    rows_per_chunk: int = DEFAULT_CHUNK_ROWS,
) -> dg.AssetCheckResult:
    """The `split_vs_move` result over the stored bars of `symbols` in `start`..`end`.

    Read one batch of symbols at a time (`symbol_batches`): a step compares a symbol's
    consecutive bars only, so batches by symbol give exactly the whole window's answer while
    memory follows `rows_per_chunk`, not the window (20 years of a whole market is ten million
    bars). Postgres pairs each bar with the previous one and sends only the steps that moved
    about as much as a split (`split_candidate_steps`); polars classifies those.
    """
    read_from = start - dt.timedelta(days=LOOKBEHIND_DAYS)
    parts: list[pl.DataFrame] = []
    batches = symbol_batches(symbols, read_from, end, rows_per_chunk)
    for batch in batches:
        with database.connect() as conn:
            steps = split_candidate_steps(conn, batch, read_from, end, MIN_LOG_RATIO)
            events = split_events(conn, batch, start, end)
        parts.append(classify_steps(steps, events).filter(pl.col("day").is_between(start, end)))
    # No symbols: split_like_moves of no bars gives the empty result in its schema.
    steps = pl.concat(parts) if parts else split_like_moves(pl.DataFrame(), pl.DataFrame())
    flagged = steps.filter(pl.col("verdict") == "possible_unrecorded_split")
    moves = steps.filter(pl.col("verdict") == "price_move")
    return dg.AssetCheckResult(
        check_name=SPLIT_VS_MOVE,
        passed=flagged.height == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{flagged.height} split-like steps without a split event "
            f"(e.g. {flagged.row(0)[0]} {flagged.row(0)[1]}); {moves.height} large price moves"
            if flagged.height
            else f"no split-like step without an event; {moves.height} large price moves"
        ),
        metadata={
            "possible_unrecorded_splits": flagged.height,
            "flagged": _rows(flagged),
            "price_moves": _rows(moves),
            "split_events": int((steps.get_column("verdict") == "split_event").sum()),
            "window": f"{start}..{end}",
            "symbols_checked": len(set(symbols)),
            # How many reads the check made: one per batch of symbols (memory bound).
            "chunks_read": len(batches),
        },
    )
