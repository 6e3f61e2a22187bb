"""The simulator's config: every behaviour switch, validated, and which of them may change live.

`SimulatorConfig` is immutable; `SimulatorState.configure` (and `POST /_sim/config`) replace it
as a whole with the fields of UPDATABLE_FIELDS changed, raising ConfigError when refused.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from polygon_simulator import market
from polygon_simulator.corporate_actions import (
    DEFAULT_DIVIDENDS,
    DEFAULT_SPLITS,
    SimDividend,
    SimSplit,
    validate_unique_splits,
)
from polygon_simulator.listings import SimListing, validate_listings

SIMULATOR_API_KEY = "simulator-key"

# Config fields `configure()` / `POST /_sim/config` may change; the key is fixed at start-up.
UPDATABLE_FIELDS = (
    "requests_per_minute",
    "rate_limit_retry_after",
    "rate_limit_window_seconds",
    "latency_seconds",
    "revision",
    "revision_from",
    "extra_stock_tickers",
    "extra_crypto_tickers",
    "today",
    "stock_universe_size",
    "crypto_universe_size",
    "history_start",
    "refuse_future",
    "stock_close_stamp_before",
    "crypto_ny_midnight_before",
    "integer_stock_volume",
    "gzip",
    "splits",
    "dividends",
    "listings",
    "body_cache_mb",
    "body_cache_entries",
    "identify",
)


class ConfigError(ValueError):
    """A config update or fault rule was rejected; the message says why."""


#: Config fields that change how or how fast answers come, never what they say.
_DELIVERY_FIELDS = (
    "api_key",
    "requests_per_minute",
    "rate_limit_retry_after",
    "latency_seconds",
    "log_limit",
    "gzip",
    "body_cache_mb",
    "body_cache_entries",
)


class SimulatorConfig(BaseModel):
    """Behaviour switches of the simulator (all have defaults; see UPDATABLE_FIELDS)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: str = SIMULATOR_API_KEY
    # Server-side limit in any rolling 60 s (Polygon free tier: 5); None = unlimited.
    requests_per_minute: int | None = Field(default=None, ge=0)
    # The limit's window: 60 s like Polygon's; tests shorten it to check a budget in seconds.
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)
    # Whether 429s from the limit carry `Retry-After` (Polygon does not document one).
    rate_limit_retry_after: bool = True
    # Added to every API request with asyncio.sleep, so concurrent requests overlap.
    latency_seconds: float = Field(default=0.0, ge=0)
    # revision > 0 perturbs bars on days >= revision_from (all days when None).
    revision: int = Field(default=0, ge=0)
    revision_from: dt.date | None = None
    # Added to the universes. Like the real API, the simulator knows its universe: the range
    # endpoint answers an empty 200 for any other ticker, and tickers are case-sensitive.
    extra_stock_tickers: tuple[str, ...] = ()
    extra_crypto_tickers: tuple[str, ...] = ()
    # Days >= today have no bar yet; None = the real UTC date at request time.
    today: dt.date | None = None
    stock_universe_size: int = Field(default=2000, ge=0, le=100_000)
    crypto_universe_size: int = Field(default=200, ge=0, le=100_000)
    # The request log keeps this many newest entries (counters are never truncated).
    log_limit: int = Field(default=100_000, ge=0)
    # The plan's history window: requests reaching before this day answer 403 NOT_AUTHORIZED
    # "Your plan doesn't include this data timeframe" (the free tier serves ~2 years); None =
    # the whole simulated history.
    history_start: dt.date | None = None
    # Requests reaching after `today` answer that same 403, as the real API does.
    refuse_future: bool = True
    # Era conventions (see market.Conventions): range stock bars before this day stamped at
    # the 16:00 New York close; crypto bars before this day stamped at New York midnight.
    stock_close_stamp_before: dt.date | None = None
    crypto_ny_midnight_before: dt.date | None = None
    # Stock volume written as whole numbers like the real API (False: as floats, `4369.0`).
    integer_stock_volume: bool = True
    # Gzip response bodies when the client sends `Accept-Encoding: gzip` (the real API does).
    gzip: bool = True
    # Bounds of the cache of built pages (the `results` JSON of range and grouped answers),
    # least recently used out first; 0 MB caches nothing. A grouped page of a 10,000-ticker
    # market is ~1.5 MB: the default holds ~128 of them, ten years of them need ~4,000 MB
    # (what `bench.market_scale` sets for its warm run). Changing a bound applies at once.
    body_cache_mb: int = Field(default=192, ge=0, le=65_536)
    body_cache_entries: int = Field(default=2048, ge=0, le=1_000_000)
    # Every answer says the data is simulated (`X-Simulated: true`), so a client pointed at
    # the simulator through POLYGON_BASE_URL labels its rows `simulator:`. False: pose as the
    # real API (no header), e.g. to test a client against what looks like a keyed vendor.
    identify: bool = True

    @property
    def world(self) -> str:
        """A short name of the market this config simulates: equal in every process and on
        every port for configs whose answers are equal (a hash of the fields that shape what
        the answers say, not how or how fast they come)."""
        shape = self.model_dump(mode="json", exclude=set(_DELIVERY_FIELDS))
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def conventions(self) -> market.Conventions:
        """The stamping and number-writing conventions in force."""
        return market.Conventions(
            stock_close_stamp_before=self.stock_close_stamp_before,
            crypto_ny_midnight_before=self.crypto_ny_midnight_before,
            integer_stock_volume=self.integer_stock_volume,
        )

    # Corporate actions the simulated vendor knows (see corporate_actions.py): configuring a
    # split makes it "happen" (listed, and applied to bars once its execution date has come).
    # By default a few real ones; `NO_CORPORATE_ACTIONS` configures none.
    splits: tuple[SimSplit, ...] = DEFAULT_SPLITS
    dividends: tuple[SimDividend, ...] = DEFAULT_DIVIDENDS
    # Listed securities with ticker intervals (see listings.py; `listings.identity_world()`
    # gives a rename, a reused ticker, a delisting and a FIGI-less inactive ticker). A ticker a
    # listing names trades only while a listing holds it.
    listings: tuple[SimListing, ...] = ()

    @field_validator("listings")
    @classmethod
    def _listings(cls, value: tuple[SimListing, ...]) -> tuple[SimListing, ...]:
        return validate_listings(value)

    @field_validator("extra_stock_tickers")
    @classmethod
    def _stocks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for ticker in value:
            if market.is_crypto(ticker) or not market.is_valid_ticker(ticker):
                raise ValueError(f"not a stock ticker: {ticker!r}")
        return tuple(dict.fromkeys(value))

    @field_validator("extra_crypto_tickers")
    @classmethod
    def _cryptos(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Accept `BTCUSD` as well as `X:BTCUSD`: the pipeline stores the bare form.
        out = [t if market.is_crypto(t) else market.CRYPTO_PREFIX + t for t in value]
        for ticker in out:
            if not market.is_valid_ticker(ticker):
                raise ValueError(f"not a crypto ticker: {ticker!r}")
        return tuple(dict.fromkeys(out))

    @field_validator("splits")
    @classmethod
    def _unique_splits(cls, value: tuple[SimSplit, ...]) -> tuple[SimSplit, ...]:
        return validate_unique_splits(value)


def validation_message(exc: ValidationError) -> str:
    """Pydantic's errors as one line: `field: message; ...` (`body` for the whole object)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )
