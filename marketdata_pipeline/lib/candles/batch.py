"""`CandleBatch`: what a candle write hands to the store, saying everything the write needs.

Every write of candle rows goes through one store function (`store.write_batch`), from the
candle assets (through the IO manager) and from the split repair alike. The batch says what it
carries, so the writer never guesses: the slice it replaces (window x symbols), the rows (a
spool of validated chunks on disk, or one frame), which kind of source answered (`polygon` or
`simulator`, decided from the API's answers, never read back from the rows), the rows
quarantined on the way, and the symbols that failed (their stored rows are left as they were,
and their status carries the error). The store checks the source against the store's claim and
writes the statuses in the same transaction as the rows they describe.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, get_args

import polars as pl

from marketdata_pipeline.lib.candles.schema import empty_rejected
from marketdata_pipeline.lib.candles.spool import CandleSpool
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass

#: Which kind of API the rows came from: the vendor (or a server posing as it) or a simulator
#: that said so in its answers. Rows carry it as their `source` prefix (`simulator:range`).
SourceFamily = Literal["polygon", "simulator"]
SOURCE_FAMILIES: tuple[str, ...] = get_args(SourceFamily)


def check_source_family(family: str, what: str) -> SourceFamily:
    """`family` when it is one of `SOURCE_FAMILIES`; ValueError naming `what` otherwise."""
    if family not in SOURCE_FAMILIES:
        raise ValueError(
            f"{what} {family!r} is not a source family "
            f"(expected one of {', '.join(SOURCE_FAMILIES)})"
        )
    return family  # type: ignore[return-value]


@dataclass(frozen=True)
class CandleBatch:
    """Validated candles for (window x symbols) from one kind of source, plus the rows
    quarantined on the way and the symbols that failed."""

    asset_class: AssetClass
    window: CandleWindow
    symbols: tuple[str, ...]  # canonical symbols whose slice this batch replaces
    # None only when no answer arrived (no page, no configured simulator): no rows then.
    source_family: SourceFamily | None
    # The rows: a large run's validated chunks wait on disk (a spool), a small write's in one
    # frame. Either way the store loads them one chunk at a time.
    candles: CandleSpool | pl.DataFrame
    rejected: pl.DataFrame = field(default_factory=empty_rejected)
    failures: dict[str, str] = field(default_factory=dict)  # symbol -> why it was not fetched

    def __post_init__(self) -> None:
        if not isinstance(self.candles, CandleSpool | pl.DataFrame):
            raise TypeError(
                f"CandleBatch.candles must be a CandleSpool or a polars DataFrame, got "
                f"{type(self.candles).__name__}"
            )
        if self.source_family is not None:
            check_source_family(self.source_family, "CandleBatch.source_family")
        elif self.rows:
            raise ValueError(
                f"CandleBatch of {self.rows} rows without a source_family: rows always come "
                "from an answer, and the answer says which kind of source sent it"
            )

    def candle_frames(self) -> Iterator[pl.DataFrame]:
        """The batch's rows, one chunk at a time."""
        if isinstance(self.candles, CandleSpool):
            yield from self.candles.frames()
        elif self.candles.height:
            yield self.candles

    @property
    def rows(self) -> int:
        """Rows the batch writes."""
        return self.candles.rows if isinstance(self.candles, CandleSpool) else self.candles.height
