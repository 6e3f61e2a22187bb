"""Deterministic synthetic daily bars for the Polygon simulator.

Every value is a pure function of (ticker, day[, revision]): there is no random walk from a fixed
origin, so any sub-range gives exactly the values of the full range, the range and grouped
endpoints agree, and a bar can be generated without generating its predecessors. Prices are a
per-ticker base price (from a stable hash of the ticker, or a realistic constant for well-known
demo tickers) times exp of a few slow sines of the day number plus small hashed noise.

Everything is vectorised with numpy so ten years of bars for one ticker, or one day for the
whole synthetic market, take about a millisecond.

THE DATA IS SIMULATED. It looks like market data but is not.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from polygon_simulator.calendar import (
    CALENDAR_FIRST_DAY,
    CALENDAR_LAST_DAY,
    NEW_YORK,
    stock_sessions,
)

CRYPTO_PREFIX = "X:"
EPOCH = dt.date(1970, 1, 1)
MS_PER_DAY = 86_400_000

# The simulated history: stocks follow the NYSE calendar, which lib/calendar covers for this span;
# crypto gets the same span so both markets can be backfilled over any range the pipeline uses.
FIRST_DAY = CALENDAR_FIRST_DAY
LAST_DAY = CALENDAR_LAST_DAY

# Path tickers the range endpoint serves. Real stock tickers are case-sensitive and may contain a
# lower-case letter after the first (`KIMpL`), or a class suffix (`BRK.A`); crypto is `X:` + pair.
_STOCK_TICKER_RE = re.compile(r"^[A-Z][A-Za-z0-9.]{0,15}$")
_CRYPTO_TICKER_RE = re.compile(r"^X:[A-Z0-9]{2,24}$")

WELL_KNOWN_STOCKS = (
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "GOOG", "META", "TSLA", "JPM", "SPY",
    "BRK.A", "BRK.B", "QQQ", "IWM", "DIA", "V", "MA", "JNJ", "WMT", "XOM",
    "UNH", "PG", "HD", "KO", "PEP", "NFLX", "AMD", "INTC", "ORCL", "CSCO",
    "BAC", "DIS", "CVX", "ADBE", "CRM", "COST", "MCD", "NKE", "IBM", "GE",
    # A preferred share: real tickers are case-sensitive, and `KIMPL` is a different (unknown)
    # ticker from Kimco's preferred series L, `KIMpL`.
    "KIMpL",
)  # fmt: skip
WELL_KNOWN_CRYPTO = (
    "X:BTCUSD", "X:ETHUSD", "X:SOLUSD", "X:ETHGBP", "X:DOGEUSD", "X:BTCEUR", "X:BTCGBP",
    "X:ETHEUR", "X:LTCUSD", "X:XRPUSD", "X:ADAUSD", "X:AVAXUSD", "X:LINKUSD", "X:DOTUSD",
    "X:ETHBTC", "X:SOLUSDT", "X:BTCUSDT", "X:ETHUSDT", "X:SHIBUSD", "X:MATICUSD",
)  # fmt: skip
_SYNTHETIC_QUOTES = ("USD", "USD", "USD", "EUR", "GBP", "USDT")

# Realistic price levels for the demo tickers so a demo chart looks plausible; everything else
# gets a hashed level.
_KNOWN_BASE_PRICES = {
    "AAPL": 150.0, "MSFT": 300.0, "NVDA": 120.0, "AMZN": 140.0, "GOOGL": 130.0, "GOOG": 131.0,
    "META": 320.0, "TSLA": 220.0, "JPM": 150.0, "SPY": 430.0, "BRK.A": 520_000.0,
    "BRK.B": 350.0, "QQQ": 370.0, "IWM": 190.0, "DIA": 340.0,
    "X:BTCUSD": 30_000.0, "X:ETHUSD": 2_000.0, "X:SOLUSD": 60.0, "X:ETHGBP": 1_600.0,
    "X:DOGEUSD": 0.08, "X:BTCEUR": 28_000.0, "X:BTCGBP": 24_000.0, "X:ETHEUR": 1_850.0,
    "X:ETHBTC": 0.06, "X:SHIBUSD": 0.00001, "X:BTCUSDT": 30_000.0, "X:ETHUSDT": 2_000.0,
}  # fmt: skip

# Shape of the log-price curve: (amplitude, period in days) of three sines. The steepest change
# of the sum per calendar day is sum(A * 2*pi / P); with twice the noise amplitude that bounds the
# close-to-close move: crypto ~5.8% a day (+1% on the day a revision starts), stocks ~6.6% over a
# 4-day holiday weekend and ~7.6% over the 5-day closures (Sandy 2012). Only the week-long closure
# after 9/11 (2001-09-17) can exceed 8% (at most ~9.7%).
_STOCK_WAVES = ((0.30, 1461.0), (0.10, 197.0), (0.025, 29.0))
_CRYPTO_WAVES = ((0.50, 1461.0), (0.16, 197.0), (0.04, 29.0))
_STOCK_NOISE = 0.012
_CRYPTO_NOISE = 0.020

_U64 = np.uint64
_GOLDEN = 0x9E3779B97F4A7C15
_MASK64 = (1 << 64) - 1


class InvalidTicker(ValueError):
    """The text is not a ticker the simulator can serve (stock or `X:` crypto)."""


def is_crypto(ticker: str) -> bool:
    """True for a crypto API ticker (`X:` prefix)."""
    return ticker.startswith(CRYPTO_PREFIX)


def is_valid_ticker(ticker: str) -> bool:
    """True when the range endpoint serves `ticker` (stock like `AAPL`/`BRK.A`, or `X:BTCUSD`)."""
    regex = _CRYPTO_TICKER_RE if is_crypto(ticker) else _STOCK_TICKER_RE
    return bool(regex.match(ticker))


def day_number(day: dt.date) -> int:
    """Days since 1970-01-01 (the integer the generator and the arrays use for a date)."""
    return (day - EPOCH).days


def day_from_number(number: int) -> dt.date:
    """Inverse of `day_number`."""
    return EPOCH + dt.timedelta(days=int(number))


# --- hashing ----------------------------------------------------------------------------------
# Python's hash() is salted per process, so every seed comes from hashlib and every per-day draw
# from splitmix64 on numpy uint64 (which wraps on overflow, exactly what the mixer needs).


def _mix_int(x: int) -> int:
    """splitmix64 finaliser on a Python int (scalar twin of `_mix`)."""
    x = (x + _GOLDEN) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser, elementwise on a uint64 array."""
    x = x + _U64(_GOLDEN)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _uniform(seeds: np.ndarray, days: np.ndarray, stream: int) -> np.ndarray:
    """Uniform [0, 1) draws, one per (seed, day), independent across `stream` numbers."""
    key = days.astype(np.int64).view(np.uint64) * _U64(0xD1B54A32D192ED03)
    key = key + _U64((stream * _GOLDEN) & _MASK64)
    bits = _mix(seeds ^ _mix(key))
    return (bits >> _U64(11)).astype(np.float64) * (1.0 / (1 << 53))


def ticker_seed(ticker: str) -> int:
    """A stable 64-bit seed for `ticker` (blake2b; identical in every process and version)."""
    return int.from_bytes(hashlib.blake2b(ticker.encode(), digest_size=8).digest(), "little")


def _unit(seed: int, stream: int) -> float:
    """A stable uniform [0, 1) draw for a per-ticker parameter."""
    return (_mix_int(seed ^ _mix_int(stream)) >> 11) / float(1 << 53)


# --- per-ticker parameters -----------------------------------------------------------------------


@dataclass(frozen=True)
class TickerParams:
    """The constants that shape one ticker's synthetic history."""

    ticker: str
    crypto: bool
    seed: int
    log_base: float  # log of the price level the curve oscillates around
    log_notional: float  # log of the typical traded value per day, in quote currency
    decimals: int  # price rounding; more than 4 only for sub-dollar crypto
    phases: tuple[float, float, float]


@lru_cache(maxsize=65_536)
def ticker_params(ticker: str, base_price: float | None = None) -> TickerParams:
    """Derive (and cache) the generator constants of an API ticker (or a listing's series key).

    `base_price` overrides the price level (listings set one, e.g. ~$12 for an earlier owner).
    """
    seed = ticker_seed(ticker)
    crypto = is_crypto(ticker)
    known = base_price if base_price is not None else _KNOWN_BASE_PRICES.get(ticker)
    if known is not None:
        base = known
    elif crypto:
        # Crypto spans from fractions of a cent to thousands: log-uniform 1e-4 .. 5e3.
        base = math.exp(math.log(1e-4) + _unit(seed, 1) * math.log(5e7))
    else:
        # Stocks: log-uniform 5 .. 600, so the low of a bar never rounds near zero.
        base = math.exp(math.log(5.0) + _unit(seed, 1) * math.log(120.0))
    # log10 of the traded value per day (quote currency): 1e6 .. 1e10, ~1e10 for the famous names.
    notional = 9.5 + 0.8 * _unit(seed, 2) if known is not None else 6.0 + 4.0 * _unit(seed, 2)
    decimals = 4 if (not crypto or base >= 1.0) else 4 + math.ceil(-math.log10(base)) + 1
    phases = tuple(2.0 * math.pi * _unit(seed, 10 + i) for i in range(3))
    return TickerParams(
        ticker=ticker,
        crypto=crypto,
        seed=seed,
        log_base=math.log(base),
        log_notional=notional * math.log(10.0),
        decimals=decimals,
        phases=phases,  # type: ignore[arg-type]
    )


@dataclass(frozen=True)
class _ParamArrays:
    """TickerParams of several tickers (or one, repeated) as aligned numpy arrays."""

    crypto: np.ndarray
    seeds: np.ndarray
    log_base: np.ndarray
    log_notional: np.ndarray
    scale: np.ndarray  # 10 ** decimals
    phases: np.ndarray  # shape (3, k)


def _param_arrays(params: list[TickerParams]) -> _ParamArrays:
    return _ParamArrays(
        crypto=np.array([p.crypto for p in params], dtype=bool),
        seeds=np.array([p.seed for p in params], dtype=np.uint64),
        log_base=np.array([p.log_base for p in params], dtype=np.float64),
        log_notional=np.array([p.log_notional for p in params], dtype=np.float64),
        scale=np.array([10.0**p.decimals for p in params], dtype=np.float64),
        phases=np.array([p.phases for p in params], dtype=np.float64).T.copy(),
    )


def _repeat(params: TickerParams, k: int) -> _ParamArrays:
    # Broadcast to full contiguous arrays on purpose: the range and grouped paths then run the
    # same numpy loops on the same kind of input, so a (ticker, day) gets bit-identical floats.
    arrays = _param_arrays([params])
    return _ParamArrays(
        crypto=np.repeat(arrays.crypto, k),
        seeds=np.repeat(arrays.seeds, k),
        log_base=np.repeat(arrays.log_base, k),
        log_notional=np.repeat(arrays.log_notional, k),
        scale=np.repeat(arrays.scale, k),
        phases=np.repeat(arrays.phases, k, axis=1),
    )


# --- calendars and timestamps -------------------------------------------------------------------


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
def _stock_calendar() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NYSE session day numbers with their 00:00 and 16:00 New York instants in Unix ms."""
    sessions = stock_sessions(FIRST_DAY, LAST_DAY)
    days = np.array([day_number(d) for d in sessions], dtype=np.int64)

    def ms(day: dt.date, hour: int) -> int:
        local = dt.datetime.combine(day, dt.time(hour), tzinfo=NEW_YORK)
        return int(local.timestamp()) * 1000

    midnight = np.array([ms(d, 0) for d in sessions], dtype=np.int64)
    close = np.array([ms(d, 16) for d in sessions], dtype=np.int64)
    return days, midnight, close


def warm_up() -> None:
    """Build the NYSE calendar tables now (about half a second) instead of on the first request."""
    _stock_calendar()
    bars("AAPL", dt.date(2020, 1, 1), dt.date(2020, 1, 10))


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
    sessions = _stock_calendar()[0]
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


def _crypto_timestamps(days: np.ndarray, conventions: Conventions) -> np.ndarray:
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
        return _crypto_timestamps(days, conventions)
    sessions, midnight, close = _stock_calendar()
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
        return _crypto_timestamps(days, conventions)
    sessions, _, close = _stock_calendar()
    return close[np.searchsorted(sessions, days)]


def stock_close_ms(day: dt.date) -> int:
    """Unix ms of 16:00 New York on `day` (the `t` grouped daily gives a stock bar)."""
    return int(dt.datetime.combine(day, dt.time(16), tzinfo=NEW_YORK).timestamp()) * 1000


def has_stock_session(day: dt.date) -> bool:
    """True when `day` is an NYSE session inside the simulated history."""
    sessions = _stock_calendar()[0]
    number = day_number(day)
    i = int(np.searchsorted(sessions, number))
    return i < len(sessions) and int(sessions[i]) == number


# --- the generator ------------------------------------------------------------------------------


def _round(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    # round-half-even on the scaled value then one correctly rounded division: the result is
    # the double nearest to the decimal, so json prints it as e.g. 1.4604, not 1.4604000000001.
    return np.maximum(np.round(x * scale), 1.0) / scale


def _generate(
    p: _ParamArrays, days: np.ndarray, revision: int, revision_from: int | None
) -> dict[str, np.ndarray]:
    """OHLCV of aligned (ticker params, day) pairs; every array in `p` has len(days)."""
    d = days.astype(np.float64)
    crypto = p.crypto
    log_c = p.log_base.copy()
    for i, (stock_wave, crypto_wave) in enumerate(zip(_STOCK_WAVES, _CRYPTO_WAVES, strict=True)):
        amp = np.where(crypto, crypto_wave[0], stock_wave[0])
        log_c += amp * np.sin(d * (2.0 * math.pi / stock_wave[1]) + p.phases[i])  # same periods
    noise = np.where(crypto, _CRYPTO_NOISE, _STOCK_NOISE)
    u = [_uniform(p.seeds, days, s) for s in range(6)]
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
        r = [_uniform(p.seeds ^ _U64(_mix_int(revision)), days, 100 + s) for s in range(3)]
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
        _repeat(ticker_params(ticker), len(days)) if params is None else _param_arrays(params),
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
    crypto_t = int(_crypto_timestamps(np.array([number], dtype=np.int64), conventions)[0])
    stock_t = stock_close_ms(day)
    out["t"] = np.array([crypto_t if is_crypto(t) else stock_t for t in tickers], dtype=np.int64)
    return out


@lru_cache(maxsize=16)
def _universe_arrays(tickers: tuple[str, ...]) -> _ParamArrays:
    return _param_arrays([ticker_params(t) for t in tickers])


@lru_cache(maxsize=16)
def _series_arrays(params: tuple[TickerParams, ...]) -> _ParamArrays:
    return _param_arrays(list(params))


# --- universes -----------------------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _synthetic_name(index: int, salt: int, min_len: int, max_len: int) -> str:
    h = _mix_int(index ^ salt)
    length = min_len + h % (max_len - min_len + 1)
    h //= max_len - min_len + 1
    letters = []
    for _ in range(length):
        h, r = divmod(h, 26)
        letters.append(_LETTERS[r])
    return "".join(letters)


@lru_cache(maxsize=8)
def stock_universe(size: int = 2000) -> tuple[str, ...]:
    """The stock tickers grouped daily serves: the demo names, then synthetic 3-5 letter ones.

    Deterministic: the same `size` always gives the same tickers in the same order.
    """
    names = list(WELL_KNOWN_STOCKS[:size])
    seen = set(WELL_KNOWN_STOCKS)
    index = 0
    while len(names) < size:
        name = _synthetic_name(index, 0x5707, 3, 5)
        index += 1
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple(names)


@lru_cache(maxsize=8)
def crypto_universe(size: int = 200) -> tuple[str, ...]:
    """The crypto pairs grouped daily serves: the demo pairs, then synthetic `X:` pairs."""
    names = list(WELL_KNOWN_CRYPTO[:size])
    seen = set(WELL_KNOWN_CRYPTO)
    index = 0
    while len(names) < size:
        base = _synthetic_name(index, 0xC0FFEE, 3, 5)
        quote = _SYNTHETIC_QUOTES[_mix_int(index ^ 0xBEEF) % len(_SYNTHETIC_QUOTES)]
        index += 1
        name = CRYPTO_PREFIX + base + quote
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple(names)
