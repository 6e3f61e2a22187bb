"""Everything a running simulator remembers: config, faults, rate-limit window, counters, log.

One `SimulatorState` backs one app. The control API (`/_sim/...`) and in-process tests call the
same methods; they may run on another thread than the event loop, so shared data is guarded by a
lock and every critical section is short (no I/O, no awaiting). The config itself (its fields
and validation) is in config.py.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter, deque
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from polygon_simulator import market
from polygon_simulator.body_cache import BodyCache
from polygon_simulator.config import (
    SIMULATOR_API_KEY,
    UPDATABLE_FIELDS,
    ConfigError,
    SimulatorConfig,
    validation_message,
)
from polygon_simulator.faults import FaultBook, FaultRule
from polygon_simulator.listings import World, world
from polygon_simulator.ratelimit import RollingWindowLimiter

# The config's names stay importable from here, where the tests, bench/ and server.py take them.
__all__ = [
    "SIMULATOR_API_KEY",
    "UPDATABLE_FIELDS",
    "ConfigError",
    "SimulatorConfig",
    "SimulatorState",
]


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
            raise ConfigError(validation_message(exc)) from None

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
            raise ConfigError(validation_message(exc)) from None
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
