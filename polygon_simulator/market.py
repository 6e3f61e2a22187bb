"""Deterministic synthetic daily bars for the Polygon simulator.

Every value is a pure function of (ticker, day[, revision]): there is no random walk from a fixed
origin, so any sub-range gives exactly the values of the full range, the range and grouped
endpoints agree, and a bar can be generated without generating its predecessors. Prices are a
per-ticker base price (from a stable hash of the ticker, or a realistic constant for well-known
demo tickers) times exp of a few slow sines of the day number plus small hashed noise.

Everything is vectorised with numpy so ten years of bars for one ticker, or one day for the
whole synthetic market, take about a millisecond.

This module holds the generator; its inputs are in universe.py (which tickers), hashing.py and
series.py (per-ticker constants) and timestamps.py (which days, and their `t`). Their names are
importable from here too, as `market.X`.

THE DATA IS SIMULATED. It looks like market data but is not.
"""

from __future__ import annotations

import datetime as dt
import math
from functools import lru_cache

import numpy as np

from polygon_simulator.hashing import mix_int, ticker_seed, uniform
from polygon_simulator.series import (
    ParamArrays,
    TickerParams,
    param_arrays,
    repeat_params,
    ticker_params,
)
from polygon_simulator.timestamps import (
    DEFAULT_CONVENTIONS,
    EPOCH,
    FIRST_DAY,
    LAST_DAY,
    MS_PER_DAY,
    Conventions,
    bar_days,
    crypto_timestamps,
    day_from_number,
    day_number,
    grouped_timestamps,
    has_stock_session,
    range_timestamps,
    stock_calendar,
    stock_close_ms,
)
from polygon_simulator.universe import (
    CRYPTO_PREFIX,
    WELL_KNOWN_CRYPTO,
    WELL_KNOWN_STOCKS,
    InvalidTicker,
    crypto_universe,
    is_crypto,
    is_valid_ticker,
    stock_universe,
)

# The market's names stay importable from here: callers use `market.X` for all of them.
__all__ = [
    "CRYPTO_PREFIX",
    "DEFAULT_CONVENTIONS",
    "EPOCH",
    "FIRST_DAY",
    "LAST_DAY",
    "MS_PER_DAY",
    "WELL_KNOWN_CRYPTO",
    "WELL_KNOWN_STOCKS",
    "Conventions",
    "InvalidTicker",
    "TickerParams",
    "bar_days",
    "bars",
    "bars_on_days",
    "crypto_universe",
    "day_from_number",
    "day_number",
    "grouped_bars",
    "grouped_timestamps",
    "has_stock_session",
    "is_crypto",
    "is_valid_ticker",
    "range_timestamps",
    "stock_close_ms",
    "stock_universe",
    "ticker_params",
    "ticker_seed",
    "warm_up",
]

# after 9/11 (2001-09-17) can exceed 8% (at most ~9.7%).
_STOCK_WAVES = ((0.30, 1461.0), (0.10, 197.0), (0.025, 29.0))
_CRYPTO_WAVES = ((0.50, 1461.0), (0.16, 197.0), (0.04, 29.0))
_STOCK_NOISE = 0.012
_CRYPTO_NOISE = 0.020


def warm_up() -> None:
    """Build the NYSE calendar tables now (about half a second) instead of on the first request."""
    stock_calendar()
    bars("AAPL", dt.date(2020, 1, 1), dt.date(2020, 1, 10))


# --- the generator ------------------------------------------------------------------------------

_U64 = np.uint64


def _round(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    # round-half-even on the scaled value then one correctly rounded division: the result is
    # the double nearest to the decimal, so json prints it as e.g. 1.4604, not 1.4604000000001.
    return np.maximum(np.round(x * scale), 1.0) / scale


def _generate(
    p: ParamArrays, days: np.ndarray, revision: int, revision_from: int | None
) -> dict[str, np.ndarray]:
    """OHLCV of aligned (ticker params, day) pairs; every array in `p` has len(days)."""
    d = days.astype(np.float64)
    crypto = p.crypto
    log_c = p.log_base.copy()
    for i, (stock_wave, crypto_wave) in enumerate(zip(_STOCK_WAVES, _CRYPTO_WAVES, strict=True)):
        amp = np.where(crypto, crypto_wave[0], stock_wave[0])
        log_c += amp * np.sin(d * (2.0 * math.pi / stock_wave[1]) + p.phases[i])  # same periods
    noise = np.where(crypto, _CRYPTO_NOISE, _STOCK_NOISE)
    u = [uniform(p.seeds, days, s) for s in range(6)]
    log_c += noise * (2.0 * u[0] - 1.0)
    log_o = log_c + 0.8 * noise * (2.0 * u[1] - 1.0)
    log_v = p.log_notional - log_c + 0.25 * (2.0 * u[2] - 1.0)

    if revision > 0:
        # A revised bar moves by 0.3-1% (price) and 0.5-2% (volume), up or down, decided per
        # (ticker, day, revision): enough to differ after rounding, small enough to stay plausible.
        if revision_from is None:
            perturbed = np.ones(len(days), dtype=bool)
        else:
            perturbed = days >= revision_from
        r = [uniform(p.seeds ^ _U64(mix_int(revision)), days, 100 + s) for s in range(3)]
        sign = np.where(r[0] < 0.5, -1.0, 1.0)
        shift = np.where(perturbed, sign * (0.003 + 0.007 * r[1]), 0.0)
        log_c += shift
        log_o += shift
        log_v += np.where(perturbed, -sign * (0.005 + 0.015 * r[2]), 0.0)

    scale = p.scale
    c = _round(np.exp(log_c), scale)
    o = _round(np.exp(log_o), scale)
    body_hi = np.maximum(o, c)
    body_lo = np.minimum(o, c)
    # Rounding is monotone, so clamping to the rounded body keeps low <= open/close <= high.
    h = np.maximum(_round(body_hi * np.exp(1.5 * noise * u[3]), scale), body_hi)
    low = np.minimum(_round(body_lo * np.exp(-1.5 * noise * u[4]), scale), body_lo)
    vw = np.clip(_round(low + (h - low) * (0.3 + 0.4 * u[5]), scale), low, h)

    volume = np.exp(log_v)
    # Stock volume is whole shares (sent as floats, like the real API); crypto keeps its fraction.
    v = np.where(crypto, volume, np.maximum(np.rint(volume), 1.0))
    per_trade = np.where(crypto, 800.0, 12_000.0)
    n = np.maximum(np.rint(v * vw / per_trade), 1.0).astype(np.int64)
    return {"o": o, "h": h, "l": low, "c": c, "v": v, "vw": vw, "n": n}


def bars_on_days(
    ticker: str,
    days: np.ndarray,
    *,
    revision: int = 0,
    revision_from: dt.date | None = None,
    conventions: Conventions = DEFAULT_CONVENTIONS,
    params: list[TickerParams] | None = None,
) -> dict[str, np.ndarray]:
    """Bars of `ticker` on the given day numbers (callers pass days that have a bar).

    `params` (one per day) gives each day's price series, for a ticker whose holder changed
    (see listings.py); by default the ticker's own. Returns a dict of aligned numpy arrays:
    `day` (datetime64[D]), `t` (range-endpoint Unix ms), `o, h, l, c, vw` (float64), `v`
    (float64) and `n` (int64).
    """
    days = np.ascontiguousarray(days, dtype=np.int64)
    out = _generate(
        repeat_params(ticker_params(ticker), len(days)) if params is None else param_arrays(params),
        days,
        revision,
        None if revision_from is None else day_number(revision_from),
    )
    out["day"] = days.astype("datetime64[D]")
    out["t"] = range_timestamps(ticker, days, conventions)
    return out


def bars(
    ticker: str,
    start: dt.date,
    end: dt.date,
    *,
    revision: int = 0,
    revision_from: dt.date | None = None,
) -> dict[str, np.ndarray]:
    """Deterministic daily bars of one API ticker over the inclusive range [start, end].

    Stocks get one bar per NYSE session, crypto one per calendar day. With `revision > 0`, the
    bars on days >= `revision_from` (all days when it is None) are perturbed: different values,
    still valid, as when Polygon revises recent bars. See `bars_on_days` for the arrays returned.
    """
    if not is_valid_ticker(ticker):
        raise InvalidTicker(f"not a stock or X: crypto ticker: {ticker!r}")
    return bars_on_days(
        ticker, bar_days(ticker, start, end), revision=revision, revision_from=revision_from
    )


def grouped_bars(
    tickers: list[str] | tuple[str, ...],
    day: dt.date,
    *,
    revision: int = 0,
    revision_from: dt.date | None = None,
    conventions: Conventions = DEFAULT_CONVENTIONS,
    params: tuple[TickerParams, ...] | None = None,
) -> dict[str, np.ndarray]:
    """One day's bars for many tickers of one market, as grouped daily serves them.

    Values are identical to `bars` for the same (ticker, day); `t` follows the grouped
    convention (16:00 New York for stocks, 00:00 UTC for crypto). The caller passes tickers that
    trade on `day`; `params` (aligned to them) overrides their price series. Adds `T` (object
    array of tickers) to the arrays `bars` returns.
    """
    number = day_number(day)
    days = np.full(len(tickers), number, dtype=np.int64)
    out = _generate(
        _universe_arrays(tuple(tickers)) if params is None else _series_arrays(params),
        days,
        revision,
        None if revision_from is None else day_number(revision_from),
    )
    out["T"] = np.array(tickers, dtype=object)
    out["day"] = days.astype("datetime64[D]")
    crypto_t = int(crypto_timestamps(np.array([number], dtype=np.int64), conventions)[0])
    stock_t = stock_close_ms(day)
    out["t"] = np.array([crypto_t if is_crypto(t) else stock_t for t in tickers], dtype=np.int64)
    return out


@lru_cache(maxsize=16)
def _universe_arrays(tickers: tuple[str, ...]) -> ParamArrays:
    return param_arrays([ticker_params(t) for t in tickers])


@lru_cache(maxsize=16)
def _series_arrays(params: tuple[TickerParams, ...]) -> ParamArrays:
    return param_arrays(list(params))
