"""Per-ticker series constants of the synthetic market (`TickerParams`), also as numpy arrays.

A ticker's price level, traded value, rounding and wave phases are drawn from a hash of the
ticker (or set for the well-known demo names), so every process derives the same history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from polygon_simulator.hashing import ticker_seed, unit
from polygon_simulator.universe import is_crypto

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
        base = math.exp(math.log(1e-4) + unit(seed, 1) * math.log(5e7))
    else:
        # Stocks: log-uniform 5 .. 600, so the low of a bar never rounds near zero.
        base = math.exp(math.log(5.0) + unit(seed, 1) * math.log(120.0))
    # log10 of the traded value per day (quote currency): 1e6 .. 1e10, ~1e10 for the famous names.
    notional = 9.5 + 0.8 * unit(seed, 2) if known is not None else 6.0 + 4.0 * unit(seed, 2)
    decimals = 4 if (not crypto or base >= 1.0) else 4 + math.ceil(-math.log10(base)) + 1
    phases = tuple(2.0 * math.pi * unit(seed, 10 + i) for i in range(3))
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
class ParamArrays:
    """TickerParams of several tickers (or one, repeated) as aligned numpy arrays."""

    crypto: np.ndarray
    seeds: np.ndarray
    log_base: np.ndarray
    log_notional: np.ndarray
    scale: np.ndarray  # 10 ** decimals
    phases: np.ndarray  # shape (3, k)


def param_arrays(params: list[TickerParams]) -> ParamArrays:
    return ParamArrays(
        crypto=np.array([p.crypto for p in params], dtype=bool),
        seeds=np.array([p.seed for p in params], dtype=np.uint64),
        log_base=np.array([p.log_base for p in params], dtype=np.float64),
        log_notional=np.array([p.log_notional for p in params], dtype=np.float64),
        scale=np.array([10.0**p.decimals for p in params], dtype=np.float64),
        phases=np.array([p.phases for p in params], dtype=np.float64).T.copy(),
    )


def repeat_params(params: TickerParams, k: int) -> ParamArrays:
    # Broadcast to full contiguous arrays on purpose: the range and grouped paths then run the
    # same numpy loops on the same kind of input, so a (ticker, day) gets bit-identical floats.
    arrays = param_arrays([params])
    return ParamArrays(
        crypto=np.repeat(arrays.crypto, k),
        seeds=np.repeat(arrays.seeds, k),
        log_base=np.repeat(arrays.log_base, k),
        log_notional=np.repeat(arrays.log_notional, k),
        scale=np.repeat(arrays.scale, k),
        phases=np.repeat(arrays.phases, k, axis=1),
    )
