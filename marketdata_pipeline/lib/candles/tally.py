"""`QualityTally`: the non-blocking quality measures of a run, gathered chunk by chunk.

A spooled run never holds all its rows, so the quality checks cannot look at one frame. Each
chunk adds its measures here; what is kept is bounded by the number of symbols (the last close
of each, for moves across chunk edges, and the missing sessions) plus a few examples, and the
result equals what the same measures give on the whole run at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl

from marketdata_pipeline.lib.candles import quality
from marketdata_pipeline.lib.symbols import AssetClass

#: Flagged rows kept as examples per measure (the checks show at most this many).
KEPT_EXAMPLES = 20


@dataclass
class Flagged:
    """How many rows a measure flagged, and the first few of them."""

    count: int = 0
    examples: pl.DataFrame | None = None

    def add(self, rows: pl.DataFrame) -> None:
        """Count `rows` and keep examples up to KEPT_EXAMPLES."""
        if rows.height == 0:
            return
        self.count += rows.height
        kept = rows if self.examples is None else pl.concat([self.examples, rows])
        self.examples = kept.head(KEPT_EXAMPLES)

    def frame(self, schema: dict[str, pl.DataType] | None = None) -> pl.DataFrame:
        """The examples (an empty frame when none)."""
        return self.examples if self.examples is not None else pl.DataFrame(schema=schema)


@dataclass
class QualityTally:
    """Missing sessions, price jumps, vwap outside [low, high] and provisional bars of a run."""

    asset_class: AssetClass
    jump_threshold: float = quality.DEFAULT_JUMP_THRESHOLD
    missing: dict[str, list[dt.date]] = field(default_factory=dict)
    jumps: Flagged = field(default_factory=Flagged)
    vwap: Flagged = field(default_factory=Flagged)
    provisional: Flagged = field(default_factory=Flagged)
    _last_close: pl.DataFrame | None = None

    def add(
        self,
        candles: pl.DataFrame,
        *,
        start: dt.date,
        end: dt.date,
        symbols: list[str] | tuple[str, ...],
    ) -> None:
        """Measure one chunk: `candles` of `symbols` over start..end (chunks in day order)."""
        for symbol, gaps in quality.missing_sessions(
            candles, self.asset_class, start, end, symbols
        ).items():
            self.missing.setdefault(symbol, []).extend(gaps)
        closes = candles.select("symbol", "day", "close")
        # The previous chunk's last close of each symbol comes first, so a move across the
        # chunk edge is measured; that row itself has no previous close and is never flagged.
        joined = closes if self._last_close is None else pl.concat([self._last_close, closes])
        self.jumps.add(quality.price_jumps(joined, self.jump_threshold))
        self._last_close = joined.sort("symbol", "day").group_by("symbol").last()
        self.vwap.add(quality.vwap_outside_range(candles))
        self.provisional.add(quality.provisional_bars(candles))
