"""`CandleWindow`: the one value for "which days does this run cover".

Dagster speaks in half-open `TimeWindow`s of UTC datetimes; people, the API and SQL speak in
inclusive dates. The conversion happens here, once per run, and every layer below (planner,
resource, validation, IO manager, store) receives the same `CandleWindow`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import dagster as dg

from marketdata_pipeline.lib.calendar import trading_days
from marketdata_pipeline.lib.symbols import AssetClass

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True, order=True)
class CandleWindow:
    """Inclusive first and last trading day of a run."""

    first: dt.date
    last: dt.date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError(f"window ends ({self.last}) before it starts ({self.first})")

    @classmethod
    def of(cls, context: dg.AssetExecutionContext | dg.OutputContext) -> CandleWindow:
        """The window of a run's partition range (one day, or a single-run backfill's range)."""
        if isinstance(context, dg.OutputContext):
            return cls.from_time_window(context.asset_partitions_time_window)
        return cls.from_time_window(context.partition_time_window)

    @classmethod
    def from_time_window(cls, window: dg.TimeWindow) -> CandleWindow:
        """Convert Dagster's half-open daily `TimeWindow` to inclusive dates.

        A range of session partitions spans from its first key's start to its last key's end,
        excluded days in between included, so `last` is the last key's day.
        """
        return cls(window.start.date(), window.end.date() - dt.timedelta(days=1))

    @property
    def end_exclusive(self) -> dt.date:
        """The day after `last`, for half-open SQL ranges (`day >= first AND day < ...`)."""
        return self.last + dt.timedelta(days=1)

    @property
    def days(self) -> int:
        """Calendar days covered."""
        return (self.last - self.first).days + 1

    def trading_window(self, asset_class: AssetClass) -> CandleWindow | None:
        """This window narrowed to `asset_class`'s first and last trading day inside it (its
        first and last partition keys: stock partitions are NYSE sessions only), or None when
        it holds no trading day."""
        days = trading_days(asset_class, self.first, self.last)
        return CandleWindow(days[0], days[-1]) if days else None

    def run_tags(self) -> dict[str, str]:
        """Run tags that make one Dagster run cover exactly this window's partitions."""
        return {RANGE_START_TAG: self.first.isoformat(), RANGE_END_TAG: self.last.isoformat()}

    def __str__(self) -> str:
        return f"{self.first}..{self.last}"
