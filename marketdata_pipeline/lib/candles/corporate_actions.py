"""Split and dividend events as frames, and the split-versus-move classification of price steps.

A split of `split_to` new shares for `split_from` old ones multiplies the traded price by
split_from/split_to from its execution date on. A day-over-day close ratio near such a ratio
with no split event on that day is either a split the vendor has not recorded (its adjusted bars
then carry the step too) or a genuine move. `split_like_moves` tells them apart as well as daily
bars allow: a split rescales the whole bar (the open gaps by the same ratio) and leaves the traded
value (price x volume) about where it was, because share volume moves inversely; a crash or a
squeeze moves the price on heavy, not inverse, volume. Nothing here changes data: a flagged day
is reported, never "corrected".
"""

from __future__ import annotations

import math

import polars as pl

from marketdata_pipeline.lib.candles.schema import UTC_DATETIME

#: Columns of `marketdata.stock_splits` that a refresh writes (learned/applied are the store's).
SPLIT_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "execution_date": pl.Date(),
    "split_from": pl.Float64(),
    "split_to": pl.Float64(),
    "adjustment_type": pl.String(),
    "vendor_id": pl.String(),
    "historical_adjustment_factor": pl.Float64(),
    "source": pl.String(),
    "fetched_at": UTC_DATETIME,
}

#: Columns of `marketdata.stock_dividends`.
DIVIDEND_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "ex_dividend_date": pl.Date(),
    "dividend_id": pl.String(),
    "cash_amount": pl.Float64(),
    "currency": pl.String(),
    "distribution_type": pl.String(),
    "frequency": pl.Int64(),
    "declaration_date": pl.Date(),
    "record_date": pl.Date(),
    "pay_date": pl.Date(),
    "split_adjusted_cash_amount": pl.Float64(),
    "historical_adjustment_factor": pl.Float64(),
    "source": pl.String(),
    "fetched_at": UTC_DATETIME,
}


def _ratios() -> tuple[tuple[str, float], ...]:
    """Common split ratios as (label, price ratio = split_from / split_to)."""
    out: dict[str, float] = {}
    for n in (2, 3, 4, 5, 6, 7, 8, 10, 15, 20, 25, 50):  # n-for-1 forward splits
        out[f"{n}-for-1"] = 1.0 / n
    for n in (2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 100):  # 1-for-n reverse splits
        out[f"1-for-{n}"] = float(n)
    out["3-for-2"] = 2.0 / 3.0
    out["5-for-2"] = 2.0 / 5.0
    out["2-for-3"] = 3.0 / 2.0
    return tuple(sorted(out.items(), key=lambda kv: kv[1]))


#: The price ratios a split can produce, labelled like the vendor's "n-for-m".
SPLIT_RATIOS: tuple[tuple[str, float], ...] = _ratios()
#: |ln(observed / split ratio)| within which a close ratio counts as "near" a split ratio: a
#: split day still has its ordinary move (a few percent) on top of the ratio.
DEFAULT_RATIO_TOLERANCE = 0.06
#: Ratios closer to 1 than this (|ln| < ln 1.45) are ordinary moves, not candidates: 4-for-3 or
#: 5-for-4 splits cannot be told from a bad day by prices alone.
MIN_LOG_RATIO = math.log(1.45)
#: A split keeps the traded value (close x volume) within this factor of the previous day's.
DEFAULT_VALUE_BAND = 2.0


def nearest_split_ratio(ratio: float, tolerance: float = DEFAULT_RATIO_TOLERANCE) -> str | None:
    """The label of the split ratio `ratio` (a close-to-close ratio) is near, or None."""
    if not (ratio > 0 and math.isfinite(ratio)) or abs(math.log(ratio)) < MIN_LOG_RATIO:
        return None
    label, value = min(SPLIT_RATIOS, key=lambda kv: abs(math.log(ratio / kv[1])))
    return label if abs(math.log(ratio / value)) <= tolerance else None


def split_like_moves(
    candles: pl.DataFrame,
    splits: pl.DataFrame,
    *,
    tolerance: float = DEFAULT_RATIO_TOLERANCE,
    value_band: float = DEFAULT_VALUE_BAND,
) -> pl.DataFrame:
    """Classify every close-to-close step near a split ratio, per (symbol, day).

    `candles` needs symbol, day, open, close, volume (one series per symbol, consecutive stored
    bars compared); `splits` needs symbol and execution_date. Returns one row per step near a
    split ratio with `symbol, day, prev_close, close, ratio, nearest_split, verdict` where
    verdict is:

    - `split_event`: a split of the symbol executes that day (a real split in the feed);
    - `possible_unrecorded_split`: no event, and the bar looks split (open gapped by the same
      ratio, traded value steady): flag it;
    - `price_move`: no event, and the bar does not look split (e.g. a crash on heavy volume):
      reported as a move, never treated as a split.
    """
    return classify_steps(
        consecutive_steps(candles), splits, tolerance=tolerance, value_band=value_band
    )


_STEP_SCHEMA = {
    "symbol": pl.String,
    "day": pl.Date,
    "open": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
    "prev_close": pl.Float64,
    "prev_volume": pl.Float64,
}
#: The columns of a step between two consecutive stored bars of a symbol (`consecutive_steps`,
#: or the database's `split_candidate_steps`): the bar's, and the previous bar's close and volume.
STEP_COLUMNS = ("symbol", "day", "open", "close", "volume", "prev_close", "prev_volume")


def consecutive_steps(candles: pl.DataFrame) -> pl.DataFrame:
    """Every bar of `candles` that has a previous bar of its symbol, with that bar's close and
    volume (`STEP_COLUMNS`)."""
    if candles.height == 0:
        return pl.DataFrame(schema=_STEP_SCHEMA)
    return (
        candles.sort("symbol", "day")
        .with_columns(
            prev_close=pl.col("close").shift(1).over("symbol"),
            prev_volume=pl.col("volume").shift(1).over("symbol"),
        )
        .filter(pl.col("prev_close").is_not_null())
        .select(STEP_COLUMNS)
    )


def classify_steps(
    steps: pl.DataFrame,
    splits: pl.DataFrame,
    *,
    tolerance: float = DEFAULT_RATIO_TOLERANCE,
    value_band: float = DEFAULT_VALUE_BAND,
) -> pl.DataFrame:
    """`split_like_moves` of steps already paired with their previous bar (`STEP_COLUMNS`).

    Any subset of a series' steps that holds every step whose close moved by at least
    `MIN_LOG_RATIO` gives the same answer: the others are never near a split ratio.
    """
    columns = ["symbol", "day", "prev_close", "close", "ratio", "nearest_split", "verdict"]
    if steps.height == 0:
        return pl.DataFrame(
            schema={
                "symbol": pl.String,
                "day": pl.Date,
                "prev_close": pl.Float64,
                "close": pl.Float64,
                "ratio": pl.Float64,
                "nearest_split": pl.String,
                "verdict": pl.String,
            }
        )
    steps = (
        steps.with_columns(
            ratio=pl.col("close") / pl.col("prev_close"),
            open_ratio=pl.col("open") / pl.col("prev_close"),
            value_ratio=(pl.col("close") * pl.col("volume"))
            / (pl.col("prev_close") * pl.col("prev_volume")),
        )
        # Cheap vectorised pre-filter: only steps that can be near a split ratio are labelled.
        .filter(pl.col("ratio").log().abs() >= MIN_LOG_RATIO)
        .with_columns(
            nearest_split=pl.col("ratio").map_elements(
                lambda r: nearest_split_ratio(r, tolerance), return_dtype=pl.String
            )
        )
        .filter(pl.col("nearest_split").is_not_null())
    )
    events = splits.select(
        pl.col("symbol"), pl.col("execution_date").alias("day"), pl.lit(True).alias("event")
    ).unique(["symbol", "day"])
    gap_near = (pl.col("open_ratio").log() - pl.col("ratio").log()).abs() <= tolerance
    value_steady = (pl.col("value_ratio").log().abs() <= math.log(value_band)).fill_null(False)
    return (
        steps.join(events, on=["symbol", "day"], how="left")
        .with_columns(
            verdict=pl.when(pl.col("event").fill_null(False))
            .then(pl.lit("split_event"))
            .when(gap_near & value_steady)
            .then(pl.lit("possible_unrecorded_split"))
            .otherwise(pl.lit("price_move"))
        )
        .select(columns)
        .sort("symbol", "day")
    )
