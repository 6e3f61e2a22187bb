"""The tickers of the simulated market: which texts are tickers, and the two universes.

Real stock tickers are case-sensitive and may contain a lower-case letter after the first
(`KIMpL`) or a class suffix (`BRK.A`); crypto is `X:` + pair. The universes are the demo names
first, then deterministic synthetic ones.
"""

from __future__ import annotations

import re
from functools import lru_cache

from polygon_simulator.hashing import mix_int

CRYPTO_PREFIX = "X:"

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


class InvalidTicker(ValueError):
    """The text is not a ticker the simulator can serve (stock or `X:` crypto)."""


def is_crypto(ticker: str) -> bool:
    """True for a crypto API ticker (`X:` prefix)."""
    return ticker.startswith(CRYPTO_PREFIX)


def is_valid_ticker(ticker: str) -> bool:
    """True when the range endpoint serves `ticker` (stock like `AAPL`/`BRK.A`, or `X:BTCUSD`)."""
    regex = _CRYPTO_TICKER_RE if is_crypto(ticker) else _STOCK_TICKER_RE
    return bool(regex.match(ticker))


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _synthetic_name(index: int, salt: int, min_len: int, max_len: int) -> str:
    h = mix_int(index ^ salt)
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
        quote = _SYNTHETIC_QUOTES[mix_int(index ^ 0xBEEF) % len(_SYNTHETIC_QUOTES)]
        index += 1
        name = CRYPTO_PREFIX + base + quote
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple(names)
