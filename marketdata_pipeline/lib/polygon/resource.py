"""`PolygonResource`: the Dagster resource that fetches daily candles from Polygon (Massive).

It holds the configuration and owns one `PolygonClient` per run (`client.py`: httpx pool,
retries, request budget, page cache). `fetch_chunks` plans the cheapest requests for
(window x symbols) (`planner.py`) and hands the plan to the fetch engine (`engine.py`), which
runs them concurrently within the budget and yields normalised frames plus a per-symbol outcome,
so one failing symbol never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any

import dagster as dg
from pydantic import PrivateAttr, field_validator

from marketdata_pipeline.lib.candles.batch import SourceFamily, check_source_family
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import ConfigError, InputError
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.engine import FetchEngine, FetchResult, empty_normalised
from marketdata_pipeline.lib.polygon.page_cache import PageCache
from marketdata_pipeline.lib.polygon.planner import (
    DEFAULT_CHUNK_ROWS,
    Strategy,
    plan_requests,
    served_days,
)
from marketdata_pipeline.lib.polygon.rate_budget import (
    LocalRateBudget,
    PostgresRateBudget,
    RateBudget,
    budget_name,
)
from marketdata_pipeline.lib.postgres.database import PostgresDatabase, ensure_schema
from marketdata_pipeline.lib.settings import (
    DEFAULT_BASE_URL,
    DEFAULT_REQUESTS_PER_MINUTE,
    parse_date,
    validate_base_url,
    validate_requests_per_minute,
)
from marketdata_pipeline.lib.symbols import AssetClass, Symbol

__all__ = ["DEAD_END_TAG", "PolygonResource"]

#: Run tag set when the run met a dead end of the API (key refused, nothing listening at the
#: base URL): one line, naming the URL; the command line reports it instead of every symbol.
DEAD_END_TAG = "marketdata/api_dead_end"


class PolygonResource(dg.ConfigurableResource):
    """Daily aggregates from the Polygon.io / Massive REST API.

    Configure `api_key` with `dg.EnvVar("POLYGON_API_KEY")` so the UI never shows it; it is sent
    only as an `Authorization: Bearer` header. `requests_per_minute` is the client-side budget
    (5 on the free tier); with a `database` it is enforced through a Postgres table for every
    process using the same key, so concurrent runs share it (without one: this process only).
    Every field is given at the edge (`definitions.py`, the command line) from `Settings`.
    """

    api_key: str
    base_url: str = DEFAULT_BASE_URL
    requests_per_minute: int = DEFAULT_REQUESTS_PER_MINUTE
    # The budget's window: a minute on every real tier. Only the tests shorten it (with the
    # simulator's), so the budget is exercised in seconds instead of minutes.
    budget_window_seconds: float = 60.0
    # The shared budget's table lives in the candle store; None keeps the budget in-process.
    database: PostgresDatabase | None = None
    # Requests in flight at once. A paid tier's 100 requests/s at ~100 ms per response needs
    # at least 10; 16 reaches the budget's floor with headroom (docs/benchmarks.md). The free
    # tier is limited by the budget, not by this.
    max_concurrent_requests: int = 16
    timeout_seconds: float = 30.0
    max_attempts: int = 8
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0
    max_pages: int = 100
    adjusted: bool = True
    page_limit: int = 50_000
    # Each row's provenance prefix: "simulator" when the command line started the local
    # simulator; otherwise "polygon", unless the server says it is a simulator in its answers.
    source: str = "polygon"
    # First day the key's plan serves (YYYY-MM-DD, POLYGON_HISTORY_START); None = no limit.
    # The planner never requests earlier days (the API would answer 403 NOT_AUTHORIZED).
    history_start: str | None = None
    # Successful pages are kept here until their rows are committed, so a killed backfill's
    # rerun does not pay for them again (None: no cache).
    cache_dir: str | None = None
    cache_max_age_days: float = 7.0
    # Pages reaching into the revision window (past `fresh_after`) are reused this long only.
    cache_recent_max_age_minutes: float = 60.0
    cache_max_mb: int = 4096
    # The API's identity in the page cache's keys; None: `base_url`. The built-in simulator
    # is named by its world ("simulator:<world>"): the command line starts it on a new port
    # each time, and a killed command's rerun must find its pages.
    cache_scope: str | None = None
    # A run's validated chunks wait here, in a private subdirectory removed after the run,
    # until the IO manager writes them (None: the system's temporary directory).
    spool_dir: str | None = None
    # ISO date: pages of requests reaching past it (the revision window) are reused for
    # `cache_recent_max_age_minutes` only, then fetched fresh. None: every page counts as recent.
    fresh_after: str | None = None

    # The rules of the settings, applied once, when the resource is built: from `Settings` at
    # the edge (already valid) or from run config in the UI (where a mistake is caught here,
    # before any request). A `ConfigError` passes through pydantic unchanged.
    @field_validator("base_url")
    @classmethod
    def _valid_base_url(cls, value: str) -> str:
        return validate_base_url(value, "PolygonResource.base_url")

    @field_validator("requests_per_minute")
    @classmethod
    def _valid_budget(cls, value: int) -> int:
        return validate_requests_per_minute(value, "PolygonResource.requests_per_minute")

    @field_validator("max_concurrent_requests")
    @classmethod
    def _valid_concurrency(cls, value: int) -> int:
        if value < 1:
            raise ConfigError("PolygonResource.max_concurrent_requests must be >= 1")
        return value

    @field_validator("source")
    @classmethod
    def _valid_source(cls, value: str) -> str:
        try:
            return check_source_family(value, "PolygonResource.source")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @field_validator("history_start")
    @classmethod
    def _valid_history_start(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            return parse_date(value, "PolygonResource.history_start").isoformat()
        except InputError as exc:
            raise ConfigError(str(exc)) from None

    _client: PolygonClient | None = PrivateAttr(default=None)
    # The run this resource serves (instance, run id), to tag it with a dead end.
    _run: tuple[Any, str] | None = PrivateAttr(default=None)
    _budget: RateBudget | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _make_budget(self, rpm: int, base_url: str) -> RateBudget:
        if self.database is None:
            return LocalRateBudget(rpm, window_seconds=self.budget_window_seconds)
        url = self.database.resolved_url()
        ensure_schema(url)  # the bucket table lives in the marketdata schema
        return PostgresRateBudget(
            rpm,
            database_url=url,
            name=budget_name(self.api_key, base_url),
            window_seconds=self.budget_window_seconds,
        )

    def get_client(self) -> PolygonClient:
        """The run's client, created on first use (validated configuration)."""
        with self._lock:
            if self._client is None:
                if not self.api_key or not self.api_key.strip():
                    raise ConfigError(
                        "no Polygon API key: set POLYGON_API_KEY (or MASSIVE_API_KEY), "
                        "or leave it unset and use the local simulator (`marketdata backfill` "
                        "and `make dev` start it for you)"
                    )
                # Every other field was validated when the resource was built (below).
                base_url = self.base_url
                self._budget = self._make_budget(self.requests_per_minute, base_url)
                cache = self._make_cache(base_url)
                self._client = PolygonClient(
                    api_key=self.api_key.strip(),
                    base_url=base_url,
                    budget=self._budget,
                    timeout_seconds=self.timeout_seconds,
                    max_attempts=self.max_attempts,
                    backoff_initial_seconds=self.backoff_initial_seconds,
                    backoff_max_seconds=self.backoff_max_seconds,
                    max_retry_after_seconds=self.max_retry_after_seconds,
                    max_pages=self.max_pages,
                    max_connections=max(4, self.max_concurrent_requests),
                    adjusted=self.adjusted,
                    page_limit=self.page_limit,
                    source=self.source,
                    page_cache=cache,
                    on_dead_end=self._tag_dead_end,
                )
            return self._client

    def source_family(self) -> SourceFamily | None:
        """Which kind of API answered this run (`PolygonClient.answered_family`): what the
        run's rows are labelled and what their write claims the store for. Before any answer,
        `simulator` when configured so, else None (unknown: such a run has no rows)."""
        with self._lock:
            client = self._client
        if client is not None:
            return client.answered_family()
        return "simulator" if self.source == "simulator" else None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Remember the run, so a dead end met by its requests can be tagged on it."""
        if context.dagster_run is not None and context.instance is not None:
            self._run = (context.instance, context.dagster_run.run_id)

    def _tag_dead_end(self, line: str) -> None:
        if self._run is not None:
            instance, run_id = self._run
            instance.add_run_tags(run_id, {DEAD_END_TAG: line})

    def history_start_date(self) -> dt.date | None:
        """`history_start` as a date (None = no limit)."""
        return dt.date.fromisoformat(self.history_start) if self.history_start else None

    def served_window(self, window: CandleWindow) -> CandleWindow | None:
        """The part of `window` the key's plan serves (from `history_start` on), or None.

        A run replaces only this part, so history fetched earlier (under a bigger plan) before
        the plan's first day is kept rather than deleted.
        """
        served = served_days(window.first, window.last, self.history_start_date())
        if served is None:
            return None
        return window if served[0] == window.first else CandleWindow(*served)

    def _make_cache(self, base_url: str) -> PageCache | None:
        if not self.cache_dir:
            return None
        try:
            fresh_after = dt.date.fromisoformat(self.fresh_after) if self.fresh_after else None
        except ValueError:
            raise ConfigError(
                f"PolygonResource.fresh_after {self.fresh_after!r} is not a YYYY-MM-DD date"
            ) from None
        if (
            self.cache_max_age_days <= 0
            or self.cache_recent_max_age_minutes <= 0
            or self.cache_max_mb < 1
        ):
            raise ConfigError(
                "PolygonResource.cache_max_age_days, cache_recent_max_age_minutes and "
                "cache_max_mb must be positive"
            )
        return PageCache(
            self.cache_dir,
            api_key=self.api_key.strip(),
            base_url=base_url,
            scope=self.cache_scope or None,
            fresh_after=fresh_after,
            max_age=dt.timedelta(days=self.cache_max_age_days),
            recent_max_age=dt.timedelta(minutes=self.cache_recent_max_age_minutes),
            max_bytes=self.cache_max_mb * 1024 * 1024,
        )

    def forget_pages(self, keys: list[str]) -> int:
        """Drop cached pages whose rows are now committed; return how many were removed."""
        client = self._client
        if client is None or client.page_cache is None or not keys:
            return 0
        return client.page_cache.forget(keys)

    def close(self) -> None:
        """Close the HTTP pool and the budget's connections."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None
            if self._budget is not None:
                self._budget.close()
                self._budget = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Release the run's connections."""
        self.close()

    def fetch_chunks(
        self,
        asset_class: AssetClass,
        symbols: list[Symbol],
        window: CandleWindow,
        *,
        log: logging.Logger | Any | None = None,
        force_strategy: Strategy | None = None,
        chunk_rows: int | None = DEFAULT_CHUNK_ROWS,
    ) -> Iterator[FetchResult]:
        """Normalised daily bars for `symbols` over `window`, as the plan's chunks one at a time
        (`split_plan`; `chunk_rows=None`: one chunk).

        The plan is chosen once for the whole window; each `FetchResult` holds one chunk's plan
        and rows, so the caller never holds the whole run. Progress (with an ETA) is logged
        across all chunks. After a grouped chunk fails, no further chunk is fetched: every
        symbol has then failed for the run.
        """
        log = log or logging.getLogger(__name__)
        plan = plan_requests(
            asset_class,
            symbols,
            window.first,
            window.last,
            force=force_strategy,
            history_start=self.history_start_date(),
        )
        log.info(plan.describe())
        if plan.strategy == "none":
            yield FetchResult(plan, empty_normalised(), fetched=[s.symbol for s in plan.symbols])
            return
        engine = FetchEngine(
            self.get_client(), workers=self.max_concurrent_requests, api_key=self.api_key, log=log
        )
        yield from engine.run(plan, chunk_rows)
