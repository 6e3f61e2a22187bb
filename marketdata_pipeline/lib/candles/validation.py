"""Validation of fetched candles before anything is written.

Two kinds of problems, two treatments:

- **Structural** problems mean the batch cannot be trusted as a whole: wrong columns or dtypes,
  nulls in required fields, non-finite prices, duplicate (symbol, day), rows outside the window or
  for symbols that were not requested. The asset raises before `Output`: nothing is written.
- **Row-level value** problems are the vendor's bad bars: high < low, open/close outside
  [low, high], negative or non-finite volume, non-positive prices, a range bar whose `t` fits
  none of the vendor's daily-bar conventions (so it cannot be placed on a day). Those rows are
  quarantined to `marketdata.rejected_candles` with their reason and the good rows are written,
  so one bad bar never blocks ten years of good ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from marketdata_pipeline.lib.candles.schema import (
    CANDLE_COLUMNS,
    CANDLE_SCHEMA,
    PRICE_COLUMNS,
    REJECTED_SCHEMA,
    REQUIRED_COLUMNS,
)
from marketdata_pipeline.lib.polygon.payload import HELPER_COLUMNS

#: Why a bar whose `t` matches no daily-bar convention is quarantined.
TIMESTAMP_REASON = (
    "timestamp fits no trading day: t is neither 00:00 nor 16:00 New York (stocks) or "
    "00:00 UTC / 00:00 New York (crypto)"
)

#: Reason texts stored in `rejected_candles.reason` (joined with "; " when several apply).
REJECT_RULES: dict[str, pl.Expr] = {
    "high below low": pl.col("high") < pl.col("low"),
    "open outside [low, high]": (pl.col("open") < pl.col("low"))
    | (pl.col("open") > pl.col("high")),
    "close outside [low, high]": (pl.col("close") < pl.col("low"))
    | (pl.col("close") > pl.col("high")),
    "negative or non-finite volume": (pl.col("volume") < 0) | ~pl.col("volume").is_finite(),
    "non-positive price": pl.any_horizontal(pl.col(c) <= 0 for c in PRICE_COLUMNS),
    TIMESTAMP_REASON: ~pl.col("t_aligned"),
}


#: Examples are rendered by polars: a vendor day in year 0 or 20000 has no Python `date`.
_DAY_TEXT = pl.col("day").cast(pl.String)


@dataclass
class StructuralReport:
    """Outcome of the structural check: problems found (empty when the batch is sound)."""

    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no structural problem was found."""
        return not self.problems


def check_structure(
    frame: pl.DataFrame,
    *,
    start: dt.date,
    end: dt.date,
    symbols: list[str] | tuple[str, ...],
) -> StructuralReport:
    """Find structural problems in `frame` for the window `start`..`end` (inclusive)."""
    report = StructuralReport()
    expected = {**CANDLE_SCHEMA}
    missing = [c for c in expected if c not in frame.columns]
    wrong = [
        f"{c} is {frame.schema[c]}, expected {t}"
        for c, t in expected.items()
        if c in frame.columns and frame.schema[c] != t
    ]
    if missing:
        report.problems.append(f"missing columns: {', '.join(missing)}")
    if wrong:
        report.problems.append("wrong dtypes: " + "; ".join(wrong))
    if missing or wrong:
        return report  # the rest of the checks need the right columns
    nulls = frame.select(pl.col(c).null_count() for c in REQUIRED_COLUMNS).row(0, named=True)
    null_cols = {c: n for c, n in nulls.items() if n}
    if null_cols:
        report.counts["nulls"] = sum(null_cols.values())
        report.problems.append(
            "nulls in required fields: " + ", ".join(f"{c} ({n})" for c, n in null_cols.items())
        )
    non_finite = frame.filter(
        pl.any_horizontal(~pl.col(c).is_finite() for c in PRICE_COLUMNS)
    ).height
    if non_finite:
        report.counts["non_finite"] = non_finite
        report.problems.append(f"{non_finite} rows with non-finite prices")
    dupes = frame.filter(pl.struct("symbol", "day").is_duplicated())
    if dupes.height:
        example = dupes.select("symbol", _DAY_TEXT).row(0)
        report.counts["duplicates"] = dupes.height
        report.problems.append(
            f"{dupes.height} rows share a (symbol, day), e.g. {example[0]} {example[1]}"
        )
    outside = frame.filter((pl.col("day") < start) | (pl.col("day") > end))
    if outside.height:
        example = outside.select("symbol", _DAY_TEXT).row(0)
        report.counts["outside_window"] = outside.height
        report.problems.append(
            f"{outside.height} rows outside the window {start}..{end}, "
            f"e.g. {example[0]} {example[1]}"
        )
    unrequested = sorted(set(frame.get_column("symbol").drop_nulls().unique()) - set(symbols))
    if unrequested:
        report.counts["unrequested_symbols"] = len(unrequested)
        report.problems.append(f"rows for symbols not requested: {', '.join(unrequested[:10])}")
    return report


def quarantine(frame: pl.DataFrame, *, asset: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a structurally sound frame into (good candles, rejected rows with reasons)."""
    reasons = pl.concat_str(
        [pl.when(rule).then(pl.lit(name)) for name, rule in REJECT_RULES.items()],
        separator="; ",
        ignore_nulls=True,
    )
    flagged = frame.with_columns(reason=reasons).with_columns(
        pl.when(pl.col("reason") == "").then(None).otherwise(pl.col("reason")).alias("reason")
    )
    good = flagged.filter(pl.col("reason").is_null()).select(CANDLE_COLUMNS)
    rejected = (
        flagged.filter(pl.col("reason").is_not_null())
        .with_columns(asset=pl.lit(asset))
        .select(list(REJECTED_SCHEMA))
        .cast(REJECTED_SCHEMA)
    )
    return good, rejected


def drop_helper_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame without the normaliser's helper columns."""
    return frame.drop([c for c in HELPER_COLUMNS if c in frame.columns])
