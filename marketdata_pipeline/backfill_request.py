"""What `marketdata backfill` is asked to do: the range, the assets, the symbols, the runs.

`validate_range` and `check_plausible` refuse bad input before any database or Dagster work;
`resolve_request_symbols` sorts explicit `--symbols` by asset class; `BackfillRequest.runs` gives
one run per asset class, since stock partitions are NYSE sessions and crypto ones UTC days.
`backfill_execution.py` runs them, `backfill_estimate.py` prices them (`--dry-run`) and
`backfill_summary.py` says what landed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.candles.schema import (
    ASSET_CLASS_BY_NAME,
    CANDLE_ASSET_BY_CLASS,
    CANDLE_ASSET_NAMES,
    candle_run_config,
)
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.settings import parse_date
from marketdata_pipeline.lib.symbols import (
    AssetClass,
    Symbol,
    canonical_case,
    parse_symbol,
)

#: The assets a backfill selects without `--asset`.
ALL_ASSETS = CANDLE_ASSET_NAMES


@dataclass(frozen=True)
class BackfillRequest:
    """A validated backfill: the window, the assets, and optional explicit symbols."""

    window: CandleWindow
    assets: tuple[str, ...]
    symbols: dict[str, list[str]] | None  # asset -> canonical symbols, None = tracked symbols

    def runs(self) -> list[BackfillRun]:
        """One run per selected asset class that has a trading day in the window (a range
        without an NYSE session has no stock partition, so no stock run)."""
        runs = []
        for asset in self.assets:
            cls = ASSET_CLASS_BY_NAME[asset]
            window = self.window.trading_window(cls)
            if window is not None:
                symbols = None if self.symbols is None else {asset: self.symbols.get(asset, [])}
                runs.append(BackfillRun(cls, asset, window, symbols))
        return runs

    def skipped_lines(self) -> list[str]:
        """A line per selected asset that gets no run, saying why."""
        running = {run.asset for run in self.runs()}
        return [
            f"{asset}: no {ASSET_CLASS_BY_NAME[asset]} trading day (NYSE session) in "
            f"{self.window}, so no partition and no run"
            for asset in self.assets
            if asset not in running
        ]


def without_untracked_classes(
    request: BackfillRequest, conn: Any
) -> tuple[BackfillRequest, list[str]]:
    """`request` without the asset classes that have nothing to fetch: no active tracked
    symbol (and, for stocks, no tracking rule), with a line saying so for each.

    Only for a request of the tracked symbols (explicit symbols say what to fetch). A run of a
    class with no symbol fetches nothing and writes nothing, yet costs Dagster's run, events
    and checks: half of a one-day backfill of a store that tracks one market.
    """
    from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
    from marketdata_pipeline.lib.postgres.universe import list_rules

    if request.symbols is not None:
        return request, []
    kept, lines = [], []
    for asset in request.assets:
        cls = ASSET_CLASS_BY_NAME[asset]
        has_rule = cls is AssetClass.STOCK and bool(list_rules(conn))
        if active_symbols(conn, cls)[0] or has_rule:
            kept.append(asset)
        else:
            lines.append(f"{asset}: no active tracked {cls} symbol, so no run")
    return BackfillRequest(request.window, tuple(kept), None), lines


@dataclass(frozen=True)
class BackfillRun:
    """One run of a backfill: an asset class's candle job over its partitions in the window."""

    asset_class: AssetClass
    asset: str
    window: CandleWindow  # first and last partition key of the class inside the request
    symbols: dict[str, list[str]] | None

    @property
    def job(self) -> str:
        """The candle job of the asset class."""
        from marketdata_pipeline.defs.candles.jobs import CANDLE_JOB_BY_CLASS

        return CANDLE_JOB_BY_CLASS[self.asset_class]

    def run_config(self) -> dict:
        """Dagster run config: INFO-level console progress, and explicit symbols if any."""
        return candle_run_config(self.symbols, log_level="INFO")


def validate_range(
    start_text: str,
    end_text: str,
    *,
    first: dt.date,
    today: dt.date | None = None,
    history_start: dt.date | None = None,
) -> CandleWindow:
    """Parse and check an inclusive date range against the partitions that exist.

    `history_start` (POLYGON_HISTORY_START) is the first day the API plan serves: a range that
    starts earlier is refused, since the API would answer 403 for those days.
    """
    start = parse_date(start_text, "--start")
    end = parse_date(end_text, "--end")
    last = last_complete_day() if today is None else today - dt.timedelta(days=1)
    if end < start:
        raise InputError(f"--end {end} is before --start {start}")
    if start < first:
        raise InputError(
            f"--start {start} is before MARKETDATA_START_DATE {first} (the first partition)"
        )
    if history_start is not None and start < history_start:
        raise InputError(
            f"--start {start} is before POLYGON_HISTORY_START {history_start}, the first day "
            "your Polygon plan serves (older days are refused with 403 NOT_AUTHORIZED): use "
            f"--start {max(history_start, first)} or later, or unset POLYGON_HISTORY_START if "
            "your plan covers older history"
        )
    if end > last:
        raise InputError(
            f"--end {end} is after the last complete day {last} (today's bars are not final)"
        )
    return CandleWindow(start, end)


def check_plausible(raw: list[str] | tuple[str, ...], assets: tuple[str, ...]) -> None:
    """Refuse any `--symbols` entry that cannot be a symbol of the selected assets.

    Runs before any database work, and names the asset class it checked against; which class
    a valid symbol belongs to is settled later by `resolve_request_symbols`.
    """
    classes = [ASSET_CLASS_BY_NAME[a] for a in assets]
    for text in raw:
        problems = []
        for cls in classes:
            try:
                parse_symbol(text, cls)
                break
            except InputError as exc:
                problems.append(str(exc))
        else:
            if len(problems) == 1:
                raise InputError(f"--symbols: {problems[0]}")
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise InputError(
                f"--symbols: {shown!r} is not a plausible ticker (stock, e.g. AAPL, BRK.A) and "
                "not a plausible pair (crypto, e.g. BTCUSD, X:ETHGBP)"
            )


def resolve_request_symbols(
    raw: list[str] | None, assets: tuple[str, ...], tracked: dict[str, AssetClass]
) -> dict[str, list[str]] | None:
    """Split `--symbols` by asset. `X:` means crypto; otherwise the tracked table decides,
    defaulting to stock."""
    if not raw:
        return None
    by_asset: dict[str, list[str]] = {a: [] for a in assets}
    for text in raw:
        upper = text.strip().upper()
        # Tracked stock symbols keep the vendor's case (`KIMpL`), crypto ones are upper case.
        stock_form = canonical_case(text.strip(), AssetClass.STOCK)
        cls = (
            AssetClass.CRYPTO
            if upper.startswith("X:")
            else tracked.get(stock_form) or tracked.get(upper)
        )
        sym: Symbol = parse_symbol(text, cls)
        asset = CANDLE_ASSET_BY_CLASS[sym.asset_class]
        if asset not in by_asset:
            raise InputError(
                f"symbol {text!r} is {sym.asset_class}, but --asset only selects "
                f"{', '.join(assets)}"
            )
        if sym.symbol not in by_asset[asset]:
            by_asset[asset].append(sym.symbol)
    return {a: s for a, s in by_asset.items() if s}


def run_universe(conn, cls: AssetClass, request: BackfillRequest) -> list[Symbol]:
    """The symbols a run of `cls` fetches: the tracked ones, and for stocks their companies'
    other tickers and the tracking rules' tickers in the window."""
    from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
    from marketdata_pipeline.lib.postgres.universe import universe_symbols

    chosen = active_symbols(conn, cls)[0]
    if cls is not AssetClass.STOCK:
        return chosen
    return universe_symbols(conn, chosen, request.window.first, request.window.last)
