"""Non-blocking quality measures of a batch, reported by asset checks with useful metadata.

None of these stop a write: they tell the user where to look (a missing session, a probable
unadjusted split, a provisional bar that will be replaced by the revision schedule).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from marketdata_pipeline.lib.calendar import trading_days
from marketdata_pipeline.lib.symbols import AssetClass

#: A close-to-close move larger than this fraction is flagged (probable split or bad bar).
DEFAULT_JUMP_THRESHOLD = 0.5
#: Tolerance for vwap against [low, high]: vendors round vwap to 4 decimals.
VWAP_TOLERANCE = 1e-4


def missing_sessions(
    frame: pl.DataFrame,
    asset_class: AssetClass,
    start: dt.date,
    end: dt.date,
    symbols: list[str] | tuple[str, ...],
) -> dict[str, list[dt.date]]:
    """Trading days in the window without a bar, per symbol (symbols with none missing omitted)."""
    expected = trading_days(asset_class, start, end)
    if not expected:
        return {}
    # Every (symbol, expected day) without a bar, as one anti-join: a chunk of 5,000 symbols x
    # 25 sessions costs no Python object per bar (a loop over sets did: seconds per chunk).
    wanted = pl.DataFrame(
        {"symbol": list(dict.fromkeys(symbols))}, schema={"symbol": pl.String}
    ).with_row_index("order")
    grid = wanted.join(pl.DataFrame({"day": expected}, schema={"day": pl.Date}), how="cross")
    gaps = grid.join(frame.select("symbol", "day"), on=["symbol", "day"], how="anti")
    if gaps.height == 0:
        return {}
    rows = gaps.sort("order", "day").group_by("order", maintain_order=True).agg("symbol", "day")
    return {symbols_[0]: days for _, symbols_, days in rows.iter_rows()}


def price_jumps(frame: pl.DataFrame, threshold: float = DEFAULT_JUMP_THRESHOLD) -> pl.DataFrame:
    """Bars whose close moved more than `threshold` (fraction) from the previous bar's close."""
    return (
        frame.sort("symbol", "day")
        .with_columns(prev_close=pl.col("close").shift(1).over("symbol"))
        .with_columns(move=(pl.col("close") / pl.col("prev_close") - 1.0))
        .filter(pl.col("move").abs() > threshold)
        .select("symbol", "day", "prev_close", "close", "move")
    )


def vwap_outside_range(frame: pl.DataFrame) -> pl.DataFrame:
    """Bars whose vwap lies outside [low, high] (beyond rounding)."""
    return frame.filter(
        pl.col("vwap").is_not_null()
        & (
            (pl.col("vwap") < pl.col("low") - VWAP_TOLERANCE)
            | (pl.col("vwap") > pl.col("high") + VWAP_TOLERANCE)
        )
    ).select("symbol", "day", "low", "high", "vwap")


def provisional_bars(frame: pl.DataFrame) -> pl.DataFrame:
    """Bars the API marked DELAYED (not final): the revision schedule re-fetches them."""
    return frame.filter(pl.col("provisional")).select("symbol", "day")
