"""Days and timestamps of the simulated bars: day numbers, NYSE sessions, `t` by era.

Stocks have a bar on NYSE sessions only, crypto on every calendar day; `Conventions` switch
older eras to the stamps the real API used then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from polygon_simulator.calendar import (
    CALENDAR_FIRST_DAY,
    CALENDAR_LAST_DAY,
    NEW_YORK,
    stock_sessions,
)
from polygon_simulator.universe import is_crypto

EPOCH = dt.date(1970, 1, 1)
MS_PER_DAY = 86_400_000

# The simulated history: stocks follow the NYSE calendar, which lib/calendar covers for this span;
# crypto gets the same span so both markets can be backfilled over any range the pipeline uses.
FIRST_DAY = CALENDAR_FIRST_DAY
LAST_DAY = CALENDAR_LAST_DAY


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (the integer the generator and the arrays use for a date)."""
    return (day - EPOCH).days


def day_from_number(number: int) -> dt.date:
    """Inverse of `day_number`."""
    return EPOCH + dt.timedelta(days=int(number))


@dataclass(frozen=True)
class Conventions:
    """How bars are stamped and written: the conventions the real API has used by era.

    - `stock_close_stamp_before`: range stock bars of earlier days carry `t` at the 16:00 New
      York close instead of New York midnight (older history does).
    - `crypto_ny_midnight_before`: crypto bars of earlier days carry `t` at New York midnight
      (04:00/05:00 UTC, as the 2020-era examples do) instead of 00:00 UTC.
    - `integer_stock_volume`: stock volume written as whole numbers (`4369`) rather than as
      floats (`4369.0`); crypto volume is always fractional.
    """

    stock_close_stamp_before: dt.date | None = None
    crypto_ny_midnight_before: dt.date | None = None
    integer_stock_volume: bool = True


DEFAULT_CONVENTIONS = Conventions()


@lru_cache(maxsize=1)
def stock_calendar() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NYSE session day numbers with their 00:00 and 16:00 New York instants in Unix ms."""
    sessions = stock_sessions(FIRST_DAY, LAST_DAY)
    days = np.array([day_number(d) for d in sessions], dtype=np.int64)

    def ms(day: dt.date, hour: int) -> int:
        local = dt.datetime.combine(day, dt.time(hour), tzinfo=NEW_YORK)
        return int(local.timestamp()) * 1000

    midnight = np.array([ms(d, 0) for d in sessions], dtype=np.int64)
    close = np.array([ms(d, 16) for d in sessions], dtype=np.int64)
    return days, midnight, close


def bar_days(ticker: str, start: dt.date, end: dt.date) -> np.ndarray:
    """Day numbers (see `day_number`) that have a bar for `ticker` in [start, end], ascending.

    Stocks: NYSE sessions only. Crypto: every calendar day. Nothing outside FIRST_DAY..LAST_DAY.
    """
    lo = max(day_number(start), day_number(FIRST_DAY))
    hi = min(day_number(end), day_number(LAST_DAY))
    if hi < lo:
        return np.empty(0, dtype=np.int64)
    if is_crypto(ticker):
        return np.arange(lo, hi + 1, dtype=np.int64)
    sessions = stock_calendar()[0]
    i, j = np.searchsorted(sessions, [lo, hi + 1])
    return sessions[i:j].copy()


def _ny_midnight_ms(days: np.ndarray) -> np.ndarray:
    """Unix ms of 00:00 New York on each day number (any calendar day, not only sessions)."""
    offsets = {}
    out = np.empty(len(days), dtype=np.int64)
    for i, number in enumerate(days.tolist()):
        if number not in offsets:
            local = dt.datetime.combine(day_from_number(number), dt.time(), tzinfo=NEW_YORK)
            offsets[number] = int(local.timestamp()) * 1000
        out[i] = offsets[number]
    return out


def crypto_timestamps(days: np.ndarray, conventions: Conventions) -> np.ndarray:
    utc = days * MS_PER_DAY
    before = conventions.crypto_ny_midnight_before
    if before is None:
        return utc
    old = days < day_number(before)
    if not old.any():
        return utc
    out = utc.copy()
    out[old] = _ny_midnight_ms(days[old])
    return out


def range_timestamps(
    ticker: str, days: np.ndarray, conventions: Conventions = DEFAULT_CONVENTIONS
) -> np.ndarray:
    """`t` of the range endpoint: 00:00 New York (stocks) or 00:00 UTC (crypto), Unix ms.

    `conventions` switches older eras to the 16:00 close (stocks) or New York midnight (crypto).
    """
    days = np.asarray(days, dtype=np.int64)
    if is_crypto(ticker):
        return crypto_timestamps(days, conventions)
    sessions, midnight, close = stock_calendar()
    index = np.searchsorted(sessions, days)
    before = conventions.stock_close_stamp_before
    if before is None:
        return midnight[index]
    return np.where(days < day_number(before), close[index], midnight[index])


def grouped_timestamps(
    ticker: str, days: np.ndarray, conventions: Conventions = DEFAULT_CONVENTIONS
) -> np.ndarray:
    """`t` of grouped daily: 16:00 New York, the session close (stocks), 00:00 UTC (crypto)."""
    days = np.asarray(days, dtype=np.int64)
    if is_crypto(ticker):
        return crypto_timestamps(days, conventions)
    sessions, _, close = stock_calendar()
    return close[np.searchsorted(sessions, days)]


def stock_close_ms(day: dt.date) -> int:
    """Unix ms of 16:00 New York on `day` (the `t` grouped daily gives a stock bar)."""
    return int(dt.datetime.combine(day, dt.time(16), tzinfo=NEW_YORK).timestamp()) * 1000


def has_stock_session(day: dt.date) -> bool:
    """True when `day` is an NYSE session inside the simulated history."""
    sessions = stock_calendar()[0]
    number = day_number(day)
    i = int(np.searchsorted(sessions, number))
    return i < len(sessions) and int(sessions[i]) == number
