"""`CandleBatch`: what a candle asset hands to the IO manager.

Besides the rows, the IO manager needs to know exactly which slice they replace and what to say
about each symbol: the run's window, the symbols fetched successfully (their slice is replaced
and their status set to ok) and the symbols that failed (their stored rows are left as they
were, and their status carries the error). Both statuses are written in the same transaction
as the rows they describe.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import polars as pl

from marketdata_pipeline.lib.candles.schema import empty_rejected
from marketdata_pipeline.lib.candles.spool import CandleSpool
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass


@dataclass(frozen=True)
class CandleBatch:
    """Validated candles for (window x symbols), plus the rows quarantined on the way."""

    asset_class: AssetClass
    window: CandleWindow
    symbols: tuple[str, ...]  # canonical symbols whose slice this batch replaces
    candles: pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=empty_rejected)
    failures: dict[str, str] = field(default_factory=dict)  # symbol -> why it was not fetched
    # A large run's rows wait on disk, chunk by chunk; `candles` then holds none of them.
    spool: CandleSpool | None = None

    def candle_frames(self) -> Iterator[pl.DataFrame]:
        """The batch's rows, one chunk at a time (the spool's chunks, then `candles`)."""
        if self.spool is not None:
            yield from self.spool.frames()
        if self.candles.height:
            yield self.candles

    @property
    def rows(self) -> int:
        """Rows the batch writes."""
        return self.candles.height + (self.spool.rows if self.spool is not None else 0)
