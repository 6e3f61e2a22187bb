"""`CandleAccumulator`: what every candle write does with fetched frames before the write.

The candle assets (chunk by chunk, into a spool) and the split repair (one symbol's span, in
memory) gather their rows the same way, here and nowhere else: the structural check of each
frame (a failure means nothing of the run is written), the quarantine of row-level rejects, the
quality tally, and the empty-answer guard (a symbol answered with no bars while rows are stored
for it keeps those rows). The callers decide only what a failure means for them (the asset fails
its run; the repair keeps the symbol's stored history).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from marketdata_pipeline.lib.candles.quality import DEFAULT_JUMP_THRESHOLD
from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA, empty_rejected
from marketdata_pipeline.lib.candles.spool import CandleSpool
from marketdata_pipeline.lib.candles.tally import QualityTally
from marketdata_pipeline.lib.candles.validation import (
    StructuralReport,
    check_structure,
    drop_helper_columns,
    quarantine,
)
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass

#: Stored rows per symbol in a window: how the empty-answer guard asks the store.
StoredCounts = Callable[[Sequence[str]], Mapping[str, int]]


@dataclass
class CandleAccumulator:
    """One write's validated rows, rejects and quality measures, gathered frame by frame.

    `spool` keeps the good rows on disk (a backfill); without one they stay in memory (a
    repair of one symbol's span).
    """

    asset: str
    asset_class: AssetClass
    jump_threshold: float = DEFAULT_JUMP_THRESHOLD
    spool: CandleSpool | None = None
    tally: QualityTally = field(init=False)
    fetched: set[str] = field(default_factory=set)
    _frames: list[pl.DataFrame] = field(default_factory=list)
    _rejected: list[pl.DataFrame] = field(default_factory=list)
    _rows_per_symbol: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.tally = QualityTally(self.asset_class, self.jump_threshold)

    def add(
        self, frame: pl.DataFrame, *, start: dt.date, end: dt.date, symbols: Sequence[str]
    ) -> StructuralReport:
        """Check `frame` (the answer for `symbols` over start..end) and, when it is sound,
        keep its good rows and quarantine the rest. A failed report keeps nothing: the caller
        writes nothing of its run."""
        report = check_structure(
            drop_helper_columns(frame), start=start, end=end, symbols=list(symbols)
        )
        if not report.passed:
            return report
        good, rejected = quarantine(frame, asset=self.asset)
        self.fetched.update(symbols)
        self.tally.add(good, start=start, end=end, symbols=list(symbols))
        if self.spool is not None:
            self.spool.add(good)
        elif good.height:
            self._frames.append(good)
            self._rows_per_symbol.update(dict(good.group_by("symbol").len().iter_rows()))
        if rejected.height:
            self._rejected.append(rejected)
        return report

    def discard(self) -> None:
        """Forget every row gathered (the run writes none of them: a failed grouped day)."""
        if self.spool is not None:
            self.spool.clear()
        self._frames.clear()
        self._rejected.clear()
        self._rows_per_symbol.clear()
        self.fetched.clear()
        self.tally = QualityTally(self.asset_class, self.jump_threshold)

    @property
    def candles(self) -> CandleSpool | pl.DataFrame:
        """The good rows: the spool, or one frame."""
        if self.spool is not None:
            return self.spool
        if not self._frames:
            return pl.DataFrame(schema=CANDLE_SCHEMA)
        return pl.concat(self._frames, how="vertical")

    @property
    def rows(self) -> int:
        """Good rows gathered."""
        if self.spool is not None:
            return self.spool.rows
        return sum(frame.height for frame in self._frames)

    def symbols_with_rows(self) -> set[str]:
        """Symbols with at least one good row."""
        if self.spool is not None:
            return self.spool.symbols()
        return set(self._rows_per_symbol)

    def rejected(self) -> pl.DataFrame:
        """Every quarantined row (the rejected table's schema)."""
        if not self._rejected:
            return empty_rejected()
        return pl.concat(self._rejected, how="vertical")

    def empty_answers(self, window: CandleWindow, stored_counts: StoredCounts) -> dict[str, str]:
        """Fetched symbols the API answered with no usable bar although rows are stored for
        them in `window`, with the reason; the tally forgets their missing days.

        Polygon has served transient empty results under load. Replacing a slice with such an
        answer would delete good history, so these symbols keep their rows and count as failed.
        """
        empty = sorted(self.fetched - self.symbols_with_rows())
        counts = stored_counts(empty) if empty else {}
        kept = {
            symbol: (
                f"{symbol} {window}: the API answered with no bars, but {count} rows are stored "
                "for this window; they were kept (a transient empty answer?). Rerun later."
            )
            for symbol, count in counts.items()
        }
        for symbol in kept:
            self.tally.missing.pop(symbol, None)
        return kept

    def written(self, kept: Iterable[str]) -> list[str]:
        """The symbols whose slice the write replaces: every fetched one but those `kept`."""
        skip = set(kept)
        return sorted(s for s in self.fetched if s not in skip)
