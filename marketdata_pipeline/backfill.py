"""`marketdata backfill`: validate a date range, run it through Dagster, summarise what landed.

The run goes through a real Dagster instance (`DAGSTER_HOME`, runs and events on Postgres), so it
shows up in the UI next to UI-launched backfills. It is one single-run range over the partitions
(the assets use `BackfillPolicy.single_run()`), executed in this process, with Dagster's INFO log
lines as progress.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.ddl import CANDLE_TABLES
from marketdata_pipeline.lib.settings import parse_date
from marketdata_pipeline.lib.symbols import AssetClass, Symbol, canonical_case, parse_symbol


@dataclass(frozen=True)
class BackfillRequest:
    """A validated backfill: inclusive dates, the assets, and optional explicit symbols."""

    start: dt.date
    end: dt.date
    assets: tuple[str, ...]
    symbols: dict[str, list[str]] | None  # asset -> canonical symbols, None = tracked symbols


def validate_range(
    start_text: str,
    end_text: str,
    *,
    first: dt.date,
    today: dt.date | None = None,
    history_start: dt.date | None = None,
) -> tuple[dt.date, dt.date]:
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
    return start, end


def check_plausible(raw: list[str] | tuple[str, ...]) -> None:
    """Refuse any `--symbols` entry that is neither a plausible stock nor crypto symbol.

    Runs before any database work; which class a valid symbol belongs to is settled later by
    `resolve_request_symbols` from the tracked table.
    """
    for text in raw:
        try:
            parse_symbol(text)
        except InputError:
            parse_symbol(text, AssetClass.CRYPTO)


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
        asset = f"{sym.asset_class.value}_daily_candles"
        if asset not in by_asset:
            raise InputError(
                f"symbol {text!r} is {sym.asset_class}, but --asset only selects "
                f"{', '.join(assets)}"
            )
        if sym.symbol not in by_asset[asset]:
            by_asset[asset].append(sym.symbol)
    return {a: s for a, s in by_asset.items() if s}


def run_config_for(request: BackfillRequest) -> dict:
    """Dagster run config: INFO-level console progress, and explicit symbols if any."""
    config: dict = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if request.symbols:
        config["ops"] = {a: {"config": {"symbols": s}} for a, s in request.symbols.items()}
    return config


def summarise(
    database_url: str, start: dt.date, end: dt.date, assets: tuple[str, ...]
) -> list[str]:
    """Lines describing rows per symbol and their day range for the window."""
    # Imported here: the database module pulls in Dagster, which validating a range (and
    # refusing a bad one at once) does not need.
    from marketdata_pipeline.lib.postgres.database import connect

    lines = []
    with connect(database_url) as conn:
        for table in assets:
            if table not in CANDLE_TABLES:
                continue
            rows = conn.execute(
                f"SELECT symbol, count(*), min(day), max(day) FROM marketdata.{table}"
                " WHERE day BETWEEN %s AND %s GROUP BY symbol ORDER BY symbol",
                (start, end),
            ).fetchall()
            lines.append(f"marketdata.{table}: {sum(r[1] for r in rows)} rows in {start}..{end}")
            lines.extend(f"  {s:<10} {n:>6} rows  {lo} .. {hi}" for s, n, lo, hi in rows)
        failed = conn.execute(
            "SELECT symbol, asset_class, last_error FROM marketdata.tracked_symbols"
            " WHERE active AND status = 'error' ORDER BY asset_class, symbol"
        ).fetchall()
    for symbol, cls, error in failed:
        lines.append(f"  FAILED {symbol} ({cls}): {error}")
    return lines
