"""Canonical symbols: parsing, validation and the API ticker of each asset class.

Symbols are stored canonical, without Polygon's `X:` crypto prefix (`BTCUSD`); the API ticker is
derived from the asset class (`X:BTCUSD`). Everything that accepts a symbol from outside (command
line, run config, SQL-added rows) goes through `parse_symbol`.

Polygon's stock tickers are case-sensitive: preferred shares and some other classes carry a
lower-case letter (`KIMpL` is Kimco's preferred series L, and `KIMPL` is a different, unknown
ticker). The canonical-case rule (`canonical_case`) therefore is:

- crypto: always upper case (every crypto ticker is);
- stock typed without any upper-case letter (`aapl`, `brk.a`): friendly input, upper-cased
  (`AAPL`, `BRK.A`);
- stock typed with an upper-case letter (`AAPL`, `KIMpL`): the vendor's exact ticker, kept as
  typed. It must start with an upper-case letter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from marketdata_pipeline.lib.errors import InputError


class AssetClass(StrEnum):
    """The two markets the pipeline tracks."""

    STOCK = "stock"
    CRYPTO = "crypto"


CRYPTO_PREFIX = "X:"
MAX_SYMBOL_LENGTH = 20

# Stocks: an upper-case letter, then letters/digits (a lower-case letter marks a share class, as
# in `KIMpL`), with an optional class suffix (`BRK.A`).
_STOCK_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,9}(\.[A-Za-z0-9]{1,3})?$")
# Crypto pairs: base currency then a known quote currency (`BTCUSD`, `ETHGBP`, `SOLUSDT`).
QUOTE_CURRENCIES = ("USDT", "USDC", "USD", "EUR", "GBP", "JPY", "CAD", "AUD", "CHF", "BTC", "ETH")
_CRYPTO_RE = re.compile(r"^[A-Z0-9]{2,12}(" + "|".join(QUOTE_CURRENCIES) + r")$")

STOCK_RULE = (
    "1-10 letters or digits starting with a letter, optional class suffix like .A "
    "(e.g. AAPL, BRK.A, or the vendor's exact case for a share class such as KIMpL)"
)
CRYPTO_RULE = (
    "base currency followed by a quote currency ("
    + ", ".join(QUOTE_CURRENCIES)
    + "), optionally prefixed X: (e.g. BTCUSD, X:ETHGBP)"
)


@dataclass(frozen=True, order=True)
class Symbol:
    """A validated, canonical symbol with its asset class."""

    symbol: str
    asset_class: AssetClass

    @property
    def api_ticker(self) -> str:
        """The ticker Polygon expects in a URL path (`X:` prefix for crypto)."""
        return CRYPTO_PREFIX + self.symbol if self.asset_class is AssetClass.CRYPTO else self.symbol


def parse_asset_class(value: str) -> AssetClass:
    """Return the AssetClass named by `value`, or raise InputError naming the allowed values."""
    try:
        return AssetClass(str(value).strip().lower())
    except ValueError:
        allowed = ", ".join(c.value for c in AssetClass)
        raise InputError(f"unknown asset class {value!r}: expected one of {allowed}") from None


def canonical_case(text: str, asset_class: AssetClass) -> str:
    """`text` in the canonical case of `asset_class` (see the module docstring for the rule).

    Crypto is upper-cased; a stock without any upper-case letter is friendly input and is
    upper-cased; a stock with an upper-case letter is the vendor's exact ticker and kept.
    """
    if asset_class is AssetClass.CRYPTO or not any(c.isupper() for c in text):
        return text.upper()
    return text


def parse_symbol(raw: str, asset_class: AssetClass | str | None = None) -> Symbol:
    """Validate and canonicalise one symbol.

    `X:ETHGBP` implies crypto; otherwise `asset_class` decides (default stock). Raises
    `InputError` naming the input and the rule it breaks.
    """
    if not isinstance(raw, str):
        raise InputError(f"symbol {raw!r} is not text")
    shown = raw if len(raw) <= 40 else raw[:40] + "..."
    if raw != raw.strip() or not raw:
        raise InputError(f"symbol {shown!r} is empty or has surrounding whitespace")
    if len(raw) > MAX_SYMBOL_LENGTH + len(CRYPTO_PREFIX):
        raise InputError(f"symbol {shown!r} is too long: at most {MAX_SYMBOL_LENGTH} characters")
    if not raw.isascii():
        raise InputError(f"symbol {shown!r} contains non-ASCII characters")
    cls = parse_asset_class(asset_class) if asset_class is not None else None
    text = raw
    if text.upper().startswith(CRYPTO_PREFIX):
        if cls is AssetClass.STOCK:
            raise InputError(
                f"symbol {raw!r} has the crypto prefix X: but asset class stock was given"
            )
        cls = AssetClass.CRYPTO
        text = text[len(CRYPTO_PREFIX) :]
    cls = cls or AssetClass.STOCK
    text = canonical_case(text, cls)
    if cls is AssetClass.STOCK and not _STOCK_RE.match(text):
        raise InputError(f"stock symbol {shown!r} is not a plausible ticker: expected {STOCK_RULE}")
    if cls is AssetClass.CRYPTO and not _CRYPTO_RE.match(text):
        raise InputError(f"crypto symbol {shown!r} is not a plausible pair: expected {CRYPTO_RULE}")
    return Symbol(text, cls)


def parse_symbols(
    raws: list[str] | tuple[str, ...], asset_class: AssetClass | str | None = None
) -> list[Symbol]:
    """Validate several symbols; all or nothing (the first bad one raises), duplicates dropped."""
    seen: dict[tuple[str, AssetClass], Symbol] = {}
    for raw in raws:
        sym = parse_symbol(raw, asset_class)
        seen.setdefault((sym.symbol, sym.asset_class), sym)
    return list(seen.values())
