"""`PolygonResource`: the Dagster resource that fetches daily candles from Polygon (Massive).

It owns one `PolygonClient` per run (httpx connection pool, tenacity retries, request budget),
plans the cheapest requests for (window x symbols), runs them concurrently within the budget,
and returns normalised frames plus a per-symbol outcome, so one failing symbol never stops the
others.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import signal
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl
from pydantic import PrivateAttr

from marketdata_pipeline.lib.candles.batch import SourceFamily, check_source_family
from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import ConfigError, InputError
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.errors import redact
from marketdata_pipeline.lib.polygon.page_cache import PageCache
from marketdata_pipeline.lib.polygon.planner import RequestPlan, Strategy, plan_requests
from marketdata_pipeline.lib.polygon.progress import MAX_PROGRESS_LINES, Progress
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

__all__ = ["MAX_PROGRESS_LINES", "FetchResult", "PolygonResource", "split_plan"]

#: Run tag set when the run met a dead end of the API (key refused, nothing listening at the
#: base URL): one line, naming the URL; the command line reports it instead of every symbol.
DEAD_END_TAG = "marketdata/api_dead_end"

#: Rows a chunk of a streamed fetch aims at: a few tens of MB as frames (docs/benchmarks.md).
DEFAULT_CHUNK_ROWS = 250_000


@dataclass
class FetchResult:
    """What a fetch produced: bars of the symbols that succeeded, and why the others failed."""

    plan: RequestPlan
    frame: pl.DataFrame
    fetched: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    # Page-cache keys behind the rows in `frame`: forget them once those rows are committed.
    cache_keys: list[str] = field(default_factory=list)
    # The whole run's plan when this result is one chunk of it (`plan` is the chunk's).
    run_plan: RequestPlan | None = None


def split_plan(plan: RequestPlan, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> list[RequestPlan]:
    """`plan` as consecutive sub-plans of about `chunk_rows` bars each, same requests in total.

    A range plan is split into blocks of symbols (each still over the whole window, so every
    request is the one the whole plan would make); a grouped plan into blocks of trading days,
    in day order, each for every symbol.
    """
    if plan.strategy == "range":
        per_chunk = max(1, chunk_rows // max(1, len(plan.days)))
        pages_per_symbol = plan.range_cost // len(plan.symbols)
        return [
            dataclasses.replace(
                plan,
                symbols=plan.symbols[i : i + per_chunk],
                range_cost=pages_per_symbol * len(plan.symbols[i : i + per_chunk]),
            )
            for i in range(0, len(plan.symbols), per_chunk)
        ]
    if plan.strategy == "grouped":
        per_chunk = max(1, chunk_rows // max(1, len(plan.symbols)))
        return [
            dataclasses.replace(
                plan,
                days=plan.days[i : i + per_chunk],
                start=plan.days[i],
                end=plan.days[min(i + per_chunk, len(plan.days)) - 1],
                grouped_cost=len(plan.days[i : i + per_chunk]),
            )
            for i in range(0, len(plan.days), per_chunk)
        ]
    return [plan]


def _leave_signals_to_the_main_thread() -> None:
    """Initializer of the request threads: they block SIGINT and SIGTERM, so the kernel delivers
    Ctrl-C to the main thread, whose wait on the requests it interrupts at once. (A signal that
    lands on a thread blocked in a socket read would wait until the main thread next runs.)"""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _request_pool(workers: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=workers, initializer=_leave_signals_to_the_main_thread)


def _empty_normalised() -> pl.DataFrame:
    return pl.DataFrame(schema={**CANDLE_SCHEMA, "t_aligned": pl.Boolean})


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
                base_url = validate_base_url(self.base_url, "PolygonResource.base_url")
                rpm = validate_requests_per_minute(
                    self.requests_per_minute, "PolygonResource.requests_per_minute"
                )
                if self.max_concurrent_requests < 1:
                    raise ConfigError("PolygonResource.max_concurrent_requests must be >= 1")
                try:
                    check_source_family(self.source, "PolygonResource.source")
                except ValueError as exc:
                    raise ConfigError(str(exc)) from None
                self._budget = self._make_budget(rpm, base_url)
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
        try:
            configured = check_source_family(self.source, "PolygonResource.source")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return "simulator" if configured == "simulator" else None

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Remember the run, so a dead end met by its requests can be tagged on it."""
        if context.dagster_run is not None and context.instance is not None:
            self._run = (context.instance, context.dagster_run.run_id)

    def _tag_dead_end(self, line: str) -> None:
        if self._run is not None:
            instance, run_id = self._run
            instance.add_run_tags(run_id, {DEAD_END_TAG: line})

    def history_start_date(self) -> dt.date | None:
        """`history_start` as a date (None = no limit); ConfigError when it is not YYYY-MM-DD."""
        if self.history_start is None or not self.history_start.strip():
            return None
        try:
            return parse_date(self.history_start, "PolygonResource.history_start")
        except InputError as exc:
            raise ConfigError(str(exc)) from None

    def served_window(self, window: CandleWindow) -> CandleWindow | None:
        """The part of `window` the key's plan serves (from `history_start` on), or None.

        A run replaces only this part, so history fetched earlier (under a bigger plan) before
        the plan's first day is kept rather than deleted.
        """
        first = self.history_start_date()
        if first is None or first <= window.first:
            return window
        if first > window.last:
            return None
        return CandleWindow(first, window.last)

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

    def fetch_candles(
        self,
        asset_class: AssetClass,
        symbols: list[Symbol],
        window: CandleWindow,
        *,
        log: logging.Logger | Any | None = None,
        force_strategy: Strategy | None = None,
    ) -> FetchResult:
        """Fetch normalised daily bars for `symbols` over `window`.

        Chooses the cheapest request plan; a symbol that fails is reported in `errors` with a
        message naming it, while the others are returned in `frame`.
        """
        (result,) = self.fetch_chunks(
            asset_class,
            symbols,
            window,
            log=log,
            force_strategy=force_strategy,
            chunk_rows=None,
        )
        return result

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
        """Like `fetch_candles`, but yields the plan's chunks one at a time (`split_plan`).

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
            yield FetchResult(plan, _empty_normalised(), fetched=[s.symbol for s in plan.symbols])
            return
        client = self.get_client()
        cache = client.page_cache
        reused_before = cache.stats.reused if cache is not None else 0
        unit = "symbols" if plan.strategy == "range" else "grouped days"
        progress = Progress(plan.cost, log, what=f"fetched {unit}")
        if plan.strategy == "range":
            parts = [plan] if chunk_rows is None else split_plan(plan, chunk_rows)
            results: Iterator[FetchResult] = (
                self._fetch_by_symbol(client, part, log, progress) for part in parts
            )
        else:
            results = self._stream_days(client, plan, log, progress, chunk_rows)
        try:
            before = client.stats.attempts
            for result in results:
                result.run_plan = plan
                result.requests = {
                    **client.stats.as_metadata(),
                    "requests": client.stats.attempts - before,
                }
                before = client.stats.attempts
                if cache is not None:
                    result.requests["pages_reused"] = cache.stats.reused - reused_before
                failed = result.plan.strategy == "grouped" and bool(result.errors)
                yield result
                # Drop this chunk before fetching the next: two chunks never live at once.
                del result
                if failed:
                    return
        finally:
            results.close()  # a grouped stream stops its prefetch when the caller stops early
            reused = cache.stats.reused - reused_before if cache is not None else 0
            if reused:
                # Every cached page stands for one request that was not sent again.
                log.info(
                    f"reused {reused:,} cached pages ({reused:,} requests saved) "
                    f"from {cache.directory}"
                )

    def _collecting(self, client: PolygonClient, fetch: Any) -> Any:
        """`fetch` wrapped to return (frame, page-cache keys it read or stored)."""
        cache = client.page_cache
        if cache is None:
            return lambda *args: (fetch(*args), [])

        def run(*args: Any) -> tuple[pl.DataFrame, list[str]]:
            with cache.collect() as keys:
                try:
                    return fetch(*args), keys
                except Exception:
                    # A failed symbol's pages may be the reason it failed (a wrong ticker,
                    # a page cut short): never let a rerun read them again.
                    cache.forget(keys)
                    raise

        return run

    def _fetch_by_symbol(
        self, client: PolygonClient, plan: RequestPlan, log: Any, progress: Progress
    ) -> FetchResult:
        first, last = plan.range_window or (plan.start, plan.end)
        frames: list[pl.DataFrame] = []
        fetched: list[str] = []
        errors: dict[str, str] = {}
        fetch_range = self._collecting(client, client.fetch_range)
        cache_keys: list[str] = []

        def one(sym: Symbol) -> tuple[pl.DataFrame, list[str]]:
            """Fetch one symbol (the client sends nothing once the key was refused)."""
            return fetch_range(sym, first, last)

        with _request_pool(self.max_concurrent_requests) as pool:
            futures = {pool.submit(one, sym): sym for sym in plan.symbols}
            try:
                for future in as_completed(futures):
                    sym = futures[future]
                    try:
                        frame, keys = future.result()
                    except Exception as exc:
                        message = redact(f"{exc}", self.api_key) or exc.__class__.__name__
                        errors[sym.symbol] = message
                        log.error(f"{sym.symbol}: {message}")
                        progress.advance(detail=f"({sym.symbol} failed)")
                        continue
                    frames.append(frame)
                    cache_keys.extend(keys)
                    fetched.append(sym.symbol)
                    progress.advance(detail=f"({sym.symbol}: {frame.height} bars)")
            except BaseException:
                # Interrupted (Ctrl-C): the queued symbols are not requested; only the requests
                # in flight are waited for.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        frame = pl.concat(frames, how="vertical", rechunk=False) if frames else _empty_normalised()
        return FetchResult(plan, frame, sorted(fetched), errors, cache_keys=cache_keys)

    def _stream_days(
        self,
        client: PolygonClient,
        plan: RequestPlan,
        log: Any,
        progress: Progress,
        chunk_rows: int | None,
    ) -> Iterator[FetchResult]:
        """A grouped plan's days in day order, as chunks of about `chunk_rows` bars *held*.

        A chunk ends once its pages carried `chunk_rows` bars before the filter to the wanted
        symbols: a whole-market page costs its whole size to parse, and a filtered frame keeps
        part of that memory, so a run of 500 stocks over a 10,000-ticker market cuts its days
        like a run of 5,000 (chunk memory follows the market, not the request). `None`: one
        chunk.

        Up to two requests per worker are queued ahead, in day order, also while the caller
        validates and spools the chunk just yielded: the API's time to build its next pages
        overlaps ours. When a day fails, nothing more is queued, the queued days are not
        requested, and one failed result (every symbol) ends the stream; its days that did
        arrive stay cached for the rerun (no keys returned).
        """
        wanted = [s.symbol for s in plan.symbols]
        fetch = self._collecting(client, client.grouped_day)
        stop = threading.Event()
        days = iter(plan.days)
        ahead = 2 * self.max_concurrent_requests
        pending: deque[tuple[dt.date, Future]] = deque()

        def one(day: dt.date) -> tuple[tuple[pl.DataFrame, int], list[str]] | None:
            """One day's wanted bars; None once another day failed (the run fails as a whole)."""
            if stop.is_set():
                return None  # queued days are not spent on: one failure fails every symbol
            try:
                return fetch(plan.asset_class, day, wanted)
            except Exception:
                stop.set()
                raise

        def chunk(chunk_days: list[dt.date], frames: list[pl.DataFrame], keys: list[str]):
            part = dataclasses.replace(
                plan,
                days=chunk_days,
                start=chunk_days[0],
                end=chunk_days[-1],
                grouped_cost=len(chunk_days),
            )
            frame = pl.concat(frames, how="vertical", rechunk=False) if frames else None
            return FetchResult(
                part, frame if frame is not None else _empty_normalised(), sorted(wanted), {},
                cache_keys=keys,
            )  # fmt: skip

        chunk_days: list[dt.date] = []
        frames: list[pl.DataFrame] = []
        keys: list[str] = []
        failures: list[str] = []
        held = yielded = 0
        answered = False
        with _request_pool(self.max_concurrent_requests) as pool:
            try:
                while True:
                    # The first day goes alone: if it is refused (a wrong key, a plan that does
                    # not cover the data), no other day has been sent.
                    limit = ahead if answered else 1
                    while len(pending) < limit and not stop.is_set():
                        day = next(days, None)
                        if day is None:
                            break
                        pending.append((day, pool.submit(one, day)))
                    if not pending:
                        break
                    day, future = pending.popleft()
                    chunk_days.append(day)
                    try:
                        fetched = future.result()
                    except Exception as exc:
                        failures.append(redact(f"{exc}", self.api_key) or exc.__class__.__name__)
                        log.error(failures[-1])
                        continue
                    answered = True
                    if fetched is None or failures:
                        continue
                    (frame, page_bars), day_keys = fetched
                    frames.append(frame)
                    keys.extend(day_keys)
                    held += page_bars
                    progress.advance(detail=f"({day})")
                    if chunk_rows is not None and held >= chunk_rows and not stop.is_set():
                        yield chunk(chunk_days, frames, keys)
                        yielded += 1
                        chunk_days, frames, keys, held = [], [], [], 0
                if failures:
                    # A missing day would make every symbol's slice incomplete, and writing it
                    # would delete stored rows for that day: fail every symbol instead, so
                    # nothing is replaced.
                    message = (
                        f"grouped daily request failed ({len(failures)} of {len(plan.days)} "
                        f"days): {failures[0]}"
                    )
                    failed = chunk(chunk_days, [], [])
                    yield FetchResult(failed.plan, failed.frame, [], dict.fromkeys(wanted, message))
                elif chunk_days:
                    yield chunk(chunk_days, frames, keys)
                elif not yielded:
                    yield FetchResult(plan, _empty_normalised(), sorted(wanted), {})
            finally:
                stop.set()  # the caller stopped early, or a day failed: request nothing more
