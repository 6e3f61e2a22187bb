"""`CandleBatch`: what a candle asset hands to the IO manager.

Besides the rows, the IO manager needs to know exactly which slice they replace: the partition
window and the symbols that were fetched successfully. A symbol whose fetch failed is *not* in
`symbols`, so its stored rows are left as they were instead of being deleted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from marketdata_pipeline.lib.candles.schema import empty_rejected
from marketdata_pipeline.lib.symbols import AssetClass


@dataclass(frozen=True)
class CandleBatch:
    """Validated candles for (window x symbols), plus the rows quarantined on the way."""

    asset_class: AssetClass
    start: dt.date  # first day of the window
    end: dt.date  # last day of the window (inclusive)
    symbols: tuple[str, ...]  # canonical symbols whose slice this batch replaces
    candles: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=empty_rejected)
