"""Everything a running simulator remembers: config, faults, rate-limit window, counters, log.

One `SimulatorState` backs one app. The control API (`/_sim/...`) and in-process tests call the
same methods; they may run on another thread than the event loop, so shared data is guarded by a
lock and every critical section is short (no I/O, no awaiting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
from collections import Counter, deque
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from polygon_simulator import market
from polygon_simulator.corporate_actions import (
    DEFAULT_DIVIDENDS,
    DEFAULT_SPLITS,
    SimDividend,
    SimSplit,
    validate_unique_splits,
)
from polygon_simulator.faults import FaultBook, FaultRule
from polygon_simulator.listings import SimListing, World, validate_listings, world
from polygon_simulator.pages import BodyCache
from polygon_simulator.ratelimit import RollingWindowLimiter

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


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )


class SimulatorState:
    """Config, faults, rate-limit window, request counters and log of one simulator."""

    def __init__(self, config: SimulatorConfig | None = None, **config_fields: Any) -> None:
        """Build from a config object and/or config field values (e.g. `api_key=...`)."""
        base = config or SimulatorConfig()
        self._config = self._updated(base, config_fields, allow_key=True)
        self._lock = threading.Lock()
        self.faults_book = FaultBook()
        self.limiter = RollingWindowLimiter()
        # Built pages, bounded by the config (the app reads and fills it; see pages.BodyCache).
        self.body_cache = BodyCache()
        self._apply_cache_bounds()
        self._clear_counters()

    # --- config ---------------------------------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        """The current (immutable) config; replaced as a whole by `configure`."""
        return self._config

    @staticmethod
    def _updated(
        config: SimulatorConfig, changes: dict[str, Any], *, allow_key: bool = False
    ) -> SimulatorConfig:
        allowed = set(UPDATABLE_FIELDS) | ({"api_key", "log_limit"} if allow_key else set())
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise ConfigError(
                f"unknown or fixed config field(s) {unknown}; updatable: {list(UPDATABLE_FIELDS)}"
            )
        try:
            return SimulatorConfig.model_validate({**config.model_dump(), **changes})
        except ValidationError as exc:
            raise ConfigError(_validation_message(exc)) from None

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change some config fields (see UPDATABLE_FIELDS); returns the new config.

        Raises ConfigError for unknown fields or invalid values, leaving the config unchanged.
        """
        with self._lock:
            self._config = self._updated(self._config, changes)
            if self._log.maxlen != self._config.log_limit:
                self._log = deque(self._log, maxlen=self._config.log_limit)
            self._apply_cache_bounds()
            return self._config

    def _apply_cache_bounds(self) -> None:
        """Resize the body cache to the config's bounds (evicting what no longer fits)."""
        cfg = self._config
        self.body_cache.resize(cfg.body_cache_entries, cfg.body_cache_mb * 1_000_000)

    def today(self) -> dt.date:
        """The simulator's today: days on or after it have no bar yet."""
        return self._config.today or dt.datetime.now(dt.UTC).date()

    def stock_tickers(self) -> tuple[str, ...]:
        """The stock universe, extras included, without the tickers listings govern."""
        cfg = self._config
        universe = _with_extras(
            market.stock_universe(cfg.stock_universe_size), cfg.extra_stock_tickers
        )
        return _without(universe, self.world().governed)

    def world(self) -> World:
        """The configured listings, indexed (who held which ticker on which day)."""
        return world(self._config.listings)

    def crypto_tickers(self) -> tuple[str, ...]:
        """The grouped-daily crypto universe, extras included."""
        cfg = self._config
        universe = market.crypto_universe(cfg.crypto_universe_size)
        return _with_extras(universe, cfg.extra_crypto_tickers)

    def knows(self, ticker: str) -> bool:
        """True when `ticker` (case-sensitive API form) is in the stock or crypto universe."""
        cfg = self._config
        if market.is_crypto(ticker):
            universe = market.crypto_universe(cfg.crypto_universe_size)
            extras = cfg.extra_crypto_tickers
        else:
            universe = market.stock_universe(cfg.stock_universe_size)
            extras = cfg.extra_stock_tickers
        if ticker in self.world().governed:
            return True
        return ticker in _universe_set(universe) or ticker in extras

    # --- faults ---------------------------------------------------------------------------------

    def add_fault(
        self,
        rule: FaultRule | dict[str, Any] | list[FaultRule | dict[str, Any]] | None = None,
        /,
        **fields: Any,
    ) -> int | list[int]:
        """Add a rule (FaultRule, dict, or keyword fields) or a list of them; returns id(s).

        Raises ConfigError when a rule is invalid (nothing of a list is added then).
        """
        if rule is None:
            rule = fields
        elif fields:
            raise ConfigError("pass either a rule or keyword fields, not both")
        rules = rule if isinstance(rule, list) else [rule]
        try:
            validated = [
                r if isinstance(r, FaultRule) else FaultRule.model_validate(r) for r in rules
            ]
        except ValidationError as exc:
            raise ConfigError(_validation_message(exc)) from None
        ids = [self.faults_book.add(r) for r in validated]
        return ids if isinstance(rule, list) else ids[0]

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.faults_book.clear()

    def remove_fault(self, rule_id: int) -> bool:
        """Remove one fault rule; False when the id is unknown."""
        return self.faults_book.remove(rule_id)

    def faults(self) -> list[dict[str, Any]]:
        """The fault rules with their ids and how often each fired."""
        return self.faults_book.describe()

    # --- counters and log -----------------------------------------------------------------------

    @property
    def generation(self) -> int:
        """Bumped by every reset; the app tags requests with it at arrival."""
        return self._generation

    def _clear_counters(self) -> None:
        # Requests still in flight across a reset (e.g. held by a delay fault) carry the old
        # generation and are not counted, so one test's stragglers never leak into the next.
        self._generation = getattr(self, "_generation", 0) + 1
        self._requests = 0
        self._by_kind: Counter[str] = Counter({"range": 0, "grouped": 0})
        self._by_status: Counter[str] = Counter()
        self._by_ticker: Counter[str] = Counter()
        self._by_fault: Counter[str] = Counter()
        self._log: deque[dict[str, Any]] = deque(maxlen=self._config.log_limit)

    def record(
        self,
        *,
        arrival: float,
        path: str,
        query: str,
        kind: str,
        ticker: str | None,
        status: int,
        api_key_in_query: bool,
        fault: str | None,
        generation: int | None = None,
    ) -> None:
        """Count one API request and append it to the log (called by the app).

        `generation` is `self.generation` at the request's arrival: a request that arrived
        before the last reset is dropped.
        """
        entry = {
            "t": arrival,
            "path": path,
            "query": query,
            "kind": kind,
            "ticker": ticker,
            "status": status,
            "api_key_in_query": api_key_in_query,
            "fault": fault,
        }
        with self._lock:
            if generation is not None and generation != self._generation:
                return
            self._requests += 1
            self._by_kind[kind] += 1
            self._by_status[str(status)] += 1
            if ticker is not None:
                self._by_ticker[ticker] += 1
            if fault is not None:
                self._by_fault[fault] += 1
            self._log.append(entry)

    def stats(self, include_log: bool = True) -> dict[str, Any]:
        """Counters (`requests`, `by_kind`, `by_status`, `by_ticker`, `by_fault`) and `log`.

        `requests` counts every API request, refused ones included; log entries are
        `{t, path, query, kind, ticker, status, api_key_in_query, fault}` with `t` the arrival
        time in Unix seconds and `query` the query string without any apiKey value.
        `body_cache` shows the page cache: bounds, `entries`, `bytes`, and `hits`/`misses`
        since the last reset.
        """
        with self._lock:
            out: dict[str, Any] = {
                "simulated": True,
                "requests": self._requests,
                "by_kind": dict(self._by_kind),
                "by_status": dict(self._by_status),
                "by_ticker": dict(self._by_ticker),
                "by_fault": dict(self._by_fault),
                "body_cache": self.body_cache.describe(),
            }
            if include_log:
                out["log"] = [dict(e) for e in self._log]
            return out

    def reset(self, reset_config: bool = False, **config_changes: Any) -> SimulatorConfig:
        """Clear counters, log, faults and the rate-limit window (built pages stay cached).

        The config is kept unless `reset_config` (back to defaults, same API key); then
        `config_changes` are applied. Returns the config in force.
        """
        with self._lock:
            config = self._config
            if reset_config:
                config = SimulatorConfig(api_key=config.api_key, log_limit=config.log_limit)
            self._config = self._updated(config, config_changes)
            self._apply_cache_bounds()
            self._clear_counters()
            self.body_cache.reset_counters()
        self.faults_book.clear()
        self.limiter.reset()
        return self._config

    def check_rate_limit(self) -> float | None:
        """Take a rate-limit slot; returns None, or the seconds to wait when over the limit."""
        self.limiter.window = self._config.rate_limit_window_seconds
        return self.limiter.acquire(self._config.requests_per_minute, time.monotonic())


@lru_cache(maxsize=8)
def _universe_set(universe: tuple[str, ...]) -> frozenset[str]:
    return frozenset(universe)


@lru_cache(maxsize=8)
def _without(universe: tuple[str, ...], governed: frozenset[str]) -> tuple[str, ...]:
    if not governed:
        return universe
    return tuple(t for t in universe if t not in governed)


def _with_extras(universe: tuple[str, ...], extras: tuple[str, ...]) -> tuple[str, ...]:
    if not extras:
        return universe
    known = set(universe)
    return universe + tuple(t for t in extras if t not in known)
