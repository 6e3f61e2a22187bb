"""Reading the candle store from Python: polars frames with exact types, straight from Postgres.

```python
from marketdata_pipeline import read

bars = read.candles(["AAPL", "MSFT"], start="2024-01-02", end="2024-06-28")
day = read.cross_section("2024-06-28")                 # every stored stock on one day
traded = read.candles("AAPL", start="2024-01-02", end="2024-06-28", adjustment="none")
daily = read.returns(start="2024-06-03", end="2024-06-28")
meta = read.security_candles(read.security_at("META", "2024-06-28"),
                             start="2015-01-02", end="2024-06-28")  # FB, then META
for batch in read.candle_batches(start="2015-01-02", end="2024-12-31", rows=1_000_000):
    ...                                                # bounded memory, any size
```

Every function finds the store the way the `marketdata` command does (`MARKETDATA_DATABASE_URL`,
else the embedded Postgres under `.marketdata/`), or takes `url=` explicitly. Rows arrive through
the ADBC Postgres driver (binary COPY decoded into Arrow, then polars without a copy): no Python
object per row. Frames are ordered by symbol, then day.

`adjustment`:
- `"split"`: as stored, split-adjusted as of the latest split the store knows.
- `"none"`: as traded on each day (`marketdata.stock_daily_candles_unadjusted`).
- `"total_return"`: the split-adjusted bars with each later cash dividend reinvested: prices
  are scaled so that the close's day-over-day change is the day's total return
  (`total_return` of `returns`); the newest bars equal the stored ones, volume is unchanged.

Crypto has no corporate actions: the three adjustments give the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Literal

import polars as pl

from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.arrow import query_batches, query_frame
from marketdata_pipeline.lib.postgres.database import ensure_schema, resolve_database_url
from marketdata_pipeline.lib.postgres.reading import (
    BAR_SCHEMA,
    RETURNS_SCHEMA,
    SECURITY_BAR_SCHEMA,
    candle_query,
    dividend_factors,
    reinvest,
    returns_query,
    security_at_query,
    security_query,
)
from marketdata_pipeline.lib.settings import parse_date, store_location, validate_database_url
from marketdata_pipeline.lib.symbols import AssetClass, parse_asset_class, parse_symbol

__all__ = [
    "ADJUSTMENTS",
    "BAR_SCHEMA",
    "RETURNS_SCHEMA",
    "candle_batches",
    "candle_query",
    "candles",
    "cross_section",
    "returns",
    "returns_query",
    "security_at",
    "security_candles",
]

Adjustment = Literal["split", "none", "total_return"]
ADJUSTMENTS: tuple[str, ...] = ("split", "none", "total_return")
DEFAULT_BATCH_ROWS = 1_000_000


# -- inputs -------------------------------------------------------------------------------


def _day(value: dt.date | str, what: str) -> dt.date:
    """`value` as a date: a `datetime.date` or an ISO `YYYY-MM-DD` string."""
    if isinstance(value, dt.datetime):
        raise InputError(f"{what} {value!r} is a datetime: expected a date (or 'YYYY-MM-DD')")
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return parse_date(value, what)
    raise InputError(f"{what} {value!r} is not a date: expected a datetime.date or 'YYYY-MM-DD'")


def _window(start: dt.date | str, end: dt.date | str) -> tuple[dt.date, dt.date]:
    first, last = _day(start, "start"), _day(end, "end")
    if last < first:
        raise InputError(f"end {last} is before start {first}")
    return first, last


def _symbols(symbols: str | Iterable[str] | None, asset_class: AssetClass) -> list[str] | None:
    """Canonical symbols (`X:BTCUSD` -> `BTCUSD`), or None for every symbol."""
    if symbols is None:
        return None
    raws = [symbols] if isinstance(symbols, str) else list(symbols)
    return sorted({parse_symbol(raw, asset_class).symbol for raw in raws})


def _adjustment(value: str) -> str:
    if value not in ADJUSTMENTS:
        raise InputError(f"adjustment {value!r} is not one of {', '.join(ADJUSTMENTS)}")
    return value


def store_url(url: str | None = None) -> str:
    """The candle store's URL: `url`, else the one the `marketdata` command uses (the schema
    is migrated on first use, as the command does)."""
    if url is not None:
        resolved = validate_database_url(url, "url")
    else:
        # The store's location only: research code need not import the pipeline's settings.
        location = store_location()
        resolved = resolve_database_url(location.database_url, location.home)
    ensure_schema(resolved)
    return resolved


# -- public -------------------------------------------------------------------------------


def candles(
    symbols: str | Iterable[str] | None = None,
    *,
    start: dt.date | str,
    end: dt.date | str,
    asset_class: str = "stock",
    adjustment: Adjustment = "split",
    url: str | None = None,
) -> pl.DataFrame:
    """Daily bars of `symbols` (default: every stored symbol) from `start` to `end` inclusive.

    Returns a polars frame with the columns of `BAR_SCHEMA` (symbol, day, ts, open, high, low,
    close, volume, vwap, transactions, provisional), ordered by symbol and day. Dates are
    `datetime.date` or `YYYY-MM-DD`; `asset_class` is `stock` or `crypto`; `adjustment` is
    `split` (as stored), `none` (as traded) or `total_return` (see the module docstring).
    Bad input raises `InputError` (a `ValueError`) naming it.
    """
    first, last = _window(start, end)
    cls = parse_asset_class(asset_class)
    adjustment = _adjustment(adjustment)
    names = _symbols(symbols, cls)
    resolved = store_url(url)
    statement = candle_query(first, last, names, asset_class=cls, adjustment=adjustment)
    bars = query_frame(resolved, statement, schema=BAR_SCHEMA)
    if cls is AssetClass.STOCK and adjustment == "total_return":
        bars = reinvest(bars, dividend_factors(resolved, names))
    return bars


def cross_section(
    day: dt.date | str,
    symbols: str | Iterable[str] | None = None,
    *,
    asset_class: str = "stock",
    adjustment: Adjustment = "split",
    url: str | None = None,
) -> pl.DataFrame:
    """Every stored bar of one `day` (or of `symbols` only): one row per symbol.

    Served by the index on `day`: it reads that day's rows, not the table.
    """
    when = _day(day, "day")
    return candles(
        symbols, start=when, end=when, asset_class=asset_class, adjustment=adjustment, url=url
    )


def returns(
    symbols: str | Iterable[str] | None = None,
    *,
    start: dt.date | str,
    end: dt.date | str,
    url: str | None = None,
) -> pl.DataFrame:
    """Daily stock returns from `start` to `end` inclusive, one row per symbol and day.

    Columns of `RETURNS_SCHEMA`: the previous bar's day and close, the day's close, the cash
    dividends going ex that day (as paid, and restated on today's share basis),
    `simple_return` (close / prev_close - 1, split-neutral) and `total_return` (with the
    dividend added back). A symbol's first stored bar has no row.
    """
    first, last = _window(start, end)
    names = _symbols(symbols, AssetClass.STOCK)
    resolved = store_url(url)
    return query_frame(resolved, returns_query(first, last, names), schema=RETURNS_SCHEMA)


def candle_batches(
    symbols: str | Iterable[str] | None = None,
    *,
    start: dt.date | str,
    end: dt.date | str,
    asset_class: str = "stock",
    adjustment: Adjustment = "split",
    rows: int = DEFAULT_BATCH_ROWS,
    url: str | None = None,
) -> Iterator[pl.DataFrame]:
    """`candles(...)` as consecutive frames of at most `rows` rows, streamed from the server.

    For reads larger than memory: only one frame (and the driver's buffer) is held at a time.
    The frames together equal `candles(...)` with the same arguments, in the same order. The
    arguments are checked (and the store found) when this is called, not at the first frame.
    """
    first, last = _window(start, end)
    cls = parse_asset_class(asset_class)
    adjustment = _adjustment(adjustment)
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise InputError(f"rows {rows!r} must be a whole number of at least 1")
    names = _symbols(symbols, cls)
    resolved = store_url(url)
    statement = candle_query(first, last, names, asset_class=cls, adjustment=adjustment)
    factors = (
        dividend_factors(resolved, names)
        if cls is AssetClass.STOCK and adjustment == "total_return"
        else None
    )
    batches = query_batches(resolved, statement, rows=rows, schema=BAR_SCHEMA)
    return batches if factors is None else (reinvest(batch, factors) for batch in batches)


def security_candles(
    securities: str | Iterable[str] | None = None,
    *,
    start: dt.date | str,
    end: dt.date | str,
    url: str | None = None,
) -> pl.DataFrame:
    """Daily stock bars by security (`marketdata.securities`: the composite FIGI, else an
    `md:` id) from `start` to `end` inclusive: a company's whole series across renames (FB,
    then META) and, under a reused ticker, only its own days.

    Columns of `SECURITY_BAR_SCHEMA` (security_id, ticker as traded that day, then the bar,
    split-adjusted as stored), ordered by security and day. Default: every security.
    """
    first, last = _window(start, end)
    if securities is None:
        ids = None
    else:
        ids = sorted({securities} if isinstance(securities, str) else set(securities))
        if not ids or any(not isinstance(i, str) or not i.strip() for i in ids):
            raise InputError(f"securities {securities!r} must be security ids (text)")
    return query_frame(store_url(url), security_query(first, last, ids), schema=SECURITY_BAR_SCHEMA)


def security_at(ticker: str, day: dt.date | str, *, url: str | None = None) -> str:
    """The security that held `ticker` on `day` (point in time: META on 2015-01-02 was
    another company than META today). InputError when nobody held it that day."""
    when = _day(day, "day")
    symbol = parse_symbol(ticker, AssetClass.STOCK).symbol
    found = query_frame(
        store_url(url), security_at_query(symbol, when), schema={"security_id": pl.String()}
    )
    security = found.item() if found.height else None
    if security is None:
        raise InputError(f"nobody held {symbol!r} on {when} (no security in the ticker history)")
    return security
