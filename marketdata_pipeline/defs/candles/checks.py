"""The asset checks of the candle assets, evaluated inside the asset before `Output`.

Blocking checks guard the write: `ohlcv_schema` fails when the batch is structurally broken (the
asset then raises, so the IO manager never runs) and `symbols_fetched` fails when any symbol could
not be fetched (the others are still written; the run is marked failed so a rerun fills the hole).
The others are WARN-level: they describe the data without stopping it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from marketdata_pipeline.lib.candles.tally import QualityTally
from marketdata_pipeline.lib.candles.validation import StructuralReport

OHLCV_SCHEMA = "ohlcv_schema"
SYMBOLS_FETCHED = "symbols_fetched"
ROWS_QUARANTINED = "rows_quarantined"
COMPLETENESS = "completeness"
PRICE_JUMPS = "price_jumps"
VWAP_WITHIN_RANGE = "vwap_within_range"
PROVISIONAL_BARS = "provisional_bars"

_DESCRIPTIONS = {
    OHLCV_SCHEMA: "Structure of the fetched batch: columns, dtypes, no nulls, finite prices, "
    "unique (symbol, day), rows only inside the window and for requested symbols. "
    "Blocking: on failure nothing is written.",
    SYMBOLS_FETCHED: "Every requested symbol was fetched. Blocking: failed symbols keep their "
    "stored rows and carry the error in marketdata.tracked_symbols; the others are written.",
    ROWS_QUARANTINED: "Vendor bars with impossible values (high < low, open/close outside "
    "[low, high], negative volume, non-positive price, misaligned timestamp) went to "
    "marketdata.rejected_candles instead of the table.",
    COMPLETENESS: "Every trading session (NYSE for stocks, every UTC day for crypto) in the "
    "window has a bar for every fetched symbol.",
    PRICE_JUMPS: "No close-to-close move beyond the threshold "
    "(probable unadjusted split or bad bar).",
    VWAP_WITHIN_RANGE: "Each bar's vwap lies within [low, high].",
    PROVISIONAL_BARS: "No bar is still marked DELAYED (provisional) by the API; the revision "
    "schedule replaces provisional bars.",
}
BLOCKING = frozenset({OHLCV_SCHEMA, SYMBOLS_FETCHED})
#: At most this many examples go into a check's metadata.
MAX_EXAMPLES = 20


def candle_check_specs(asset: str) -> list[dg.AssetCheckSpec]:
    """The check specs declared on a candle asset."""
    return [
        dg.AssetCheckSpec(name, asset=asset, description=text, blocking=name in BLOCKING)
        for name, text in _DESCRIPTIONS.items()
    ]


def _examples(frame: pl.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.json(
        [
            {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in row.items()}
            for row in frame.head(MAX_EXAMPLES).iter_rows(named=True)
        ]
    )


def structural_result(report: StructuralReport) -> dg.AssetCheckResult:
    """The `ohlcv_schema` result for a structural report."""
    return dg.AssetCheckResult(
        check_name=OHLCV_SCHEMA,
        passed=report.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(report.problems) if report.problems else "batch is well-formed",
        metadata={"problems": dg.MetadataValue.json(report.problems), **report.counts},
    )


def fetch_result(requested: int, errors: dict[str, str]) -> dg.AssetCheckResult:
    """The `symbols_fetched` result: which symbols failed and why."""
    return dg.AssetCheckResult(
        check_name=SYMBOLS_FETCHED,
        passed=not errors,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{len(errors)} of {requested} symbols failed: {', '.join(sorted(errors)[:10])}"
            if errors
            else f"all {requested} symbols fetched"
        ),
        metadata={
            "requested": requested,
            "failed": len(errors),
            "errors": dg.MetadataValue.json(dict(sorted(errors.items())[:MAX_EXAMPLES])),
        },
    )


def quality_results_of(
    tally: QualityTally, rejected: pl.DataFrame
) -> Iterator[dg.AssetCheckResult]:
    """The WARN-level checks from a run's tally (gathered chunk by chunk) and its rejects."""
    warn = dg.AssetCheckSeverity.WARN
    reasons = (
        rejected.group_by("reason").len().sort("len", descending=True).rows()
        if rejected.height
        else []
    )
    yield dg.AssetCheckResult(
        check_name=ROWS_QUARANTINED,
        passed=rejected.height == 0,
        severity=warn,
        description=f"{rejected.height} vendor rows quarantined to marketdata.rejected_candles",
        metadata={
            "quarantined": rejected.height,
            "by_reason": dg.MetadataValue.json({r: n for r, n in reasons}),
            "examples": _examples(rejected.select("symbol", "day", "reason")),
        },
    )
    missing = {symbol: sorted(days) for symbol, days in sorted(tally.missing.items())}
    n_missing = sum(len(v) for v in missing.values())
    yield dg.AssetCheckResult(
        check_name=COMPLETENESS,
        passed=not missing,
        severity=warn,
        description=(
            f"{n_missing} missing sessions across {len(missing)} symbols"
            if missing
            else "no missing sessions"
        ),
        metadata={
            "missing_sessions": n_missing,
            "symbols_with_gaps": len(missing),
            "missing": dg.MetadataValue.json(
                {s: [d.isoformat() for d in days[:MAX_EXAMPLES]] for s, days in missing.items()}
            ),
        },
    )
    threshold = tally.jump_threshold
    yield dg.AssetCheckResult(
        check_name=PRICE_JUMPS,
        passed=tally.jumps.count == 0,
        severity=warn,
        description=f"{tally.jumps.count} close-to-close moves beyond {threshold:.0%}",
        metadata={
            "jumps": tally.jumps.count,
            "threshold": threshold,
            "examples": _examples(tally.jumps.frame()),
        },
    )
    yield dg.AssetCheckResult(
        check_name=VWAP_WITHIN_RANGE,
        passed=tally.vwap.count == 0,
        severity=warn,
        description=f"{tally.vwap.count} bars with vwap outside [low, high]",
        metadata={"bars": tally.vwap.count, "examples": _examples(tally.vwap.frame())},
    )
    yield dg.AssetCheckResult(
        check_name=PROVISIONAL_BARS,
        passed=tally.provisional.count == 0,
        severity=warn,
        description=f"{tally.provisional.count} bars still marked DELAYED (provisional)",
        metadata={
            "bars": tally.provisional.count,
            "examples": _examples(tally.provisional.frame()),
        },
    )
