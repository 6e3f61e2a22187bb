"""The fetch engine: a request plan's chunks, fetched concurrently on request threads.

A range plan is fetched per symbol (one range request each, `split_plan`'s blocks of symbols as
chunks), a grouped plan as a stream of days in day order (`GroupedStream`). A symbol that fails is
reported in its result's `errors` while the others go on; a grouped day that fails fails every
symbol (a missing day would leave every symbol's slice incomplete).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.errors import redact
from marketdata_pipeline.lib.polygon.planner import RequestPlan, split_plan
from marketdata_pipeline.lib.polygon.progress import Progress
from marketdata_pipeline.lib.symbols import Symbol


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

    @property
    def fails_the_run(self) -> bool:
        """A grouped day that failed fails every symbol of the run: a day of the whole market
        is one answer, so no symbol's slice is complete without it. The one statement of the
        rule: the engine stops fetching after such a chunk, the asset writes nothing."""
        return self.plan.strategy == "grouped" and bool(self.errors)


def _leave_signals_to_the_main_thread() -> None:
    """Initializer of the request threads: they block SIGINT and SIGTERM, so the kernel delivers
    Ctrl-C to the main thread, whose wait on the requests it interrupts at once. (A signal that
    lands on a thread blocked in a socket read would wait until the main thread next runs.)"""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def request_pool(workers: int) -> ThreadPoolExecutor:
    """A pool of `workers` request threads that leave Ctrl-C to the main thread."""
    return ThreadPoolExecutor(max_workers=workers, initializer=_leave_signals_to_the_main_thread)


def empty_normalised() -> pl.DataFrame:
    """A normalised frame without rows (candle schema plus helper columns)."""
    return pl.DataFrame(schema={**CANDLE_SCHEMA, "t_aligned": pl.Boolean})


def failure_text(exc: BaseException, api_key: str) -> str:
    """A failed request's message for logs and results, without the key."""
    return redact(f"{exc}", api_key) or exc.__class__.__name__


def collecting(client: PolygonClient, fetch: Callable[..., Any]) -> Callable[..., Any]:
    """`fetch` wrapped to return (its result, page-cache keys it read or stored)."""
    cache = client.page_cache
    if cache is None:
        return lambda *args: (fetch(*args), [])

    def run(*args: Any) -> tuple[Any, list[str]]:
        with cache.collect() as keys:
            try:
                return fetch(*args), keys
            except Exception:
                # A failed symbol's pages may be the reason it failed (a wrong ticker,
                # a page cut short): never let a rerun read them again.
                cache.forget(keys)
                raise

    return run


class FetchEngine:
    """Runs plans on one client with `workers` requests in flight at once."""

    def __init__(self, client: PolygonClient, *, workers: int, api_key: str, log: Any) -> None:
        self.client = client
        self.workers = workers
        self.api_key = api_key
        self.log = log

    def run(self, plan: RequestPlan, chunk_rows: int | None) -> Iterator[FetchResult]:
        """`plan`'s results, one chunk at a time (None: one chunk), with request counts.

        Progress (with an ETA) is logged across all chunks. After a grouped chunk fails, no
        further chunk is fetched: every symbol has then failed for the run.
        """
        client, cache = self.client, self.client.page_cache
        reused_before = cache.stats.reused if cache is not None else 0
        unit = "symbols" if plan.strategy == "range" else "grouped days"
        progress = Progress(plan.cost, self.log, what=f"fetched {unit}")
        if plan.strategy == "range":
            parts = [plan] if chunk_rows is None else split_plan(plan, chunk_rows)
            results: Iterator[FetchResult] = (self._by_symbol(part, progress) for part in parts)
        else:
            results = GroupedStream(self, plan, progress, chunk_rows).run()
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
                failed = result.fails_the_run
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
                self.log.info(
                    f"reused {reused:,} cached pages ({reused:,} requests saved) "
                    f"from {cache.directory}"
                )

    def _by_symbol(self, plan: RequestPlan, progress: Progress) -> FetchResult:
        """A range plan: one range request per symbol (the client sends nothing once the key
        was refused); failed symbols in `errors`."""
        first, last = plan.range_window or (plan.start, plan.end)
        frames: list[pl.DataFrame] = []
        fetched: list[str] = []
        errors: dict[str, str] = {}
        fetch_range = collecting(self.client, self.client.fetch_range)
        cache_keys: list[str] = []

        with request_pool(self.workers) as pool:
            futures = {pool.submit(fetch_range, sym, first, last): sym for sym in plan.symbols}
            try:
                for future in as_completed(futures):
                    sym: Symbol = futures[future]
                    try:
                        frame, keys = future.result()
                    except Exception as exc:
                        message = failure_text(exc, self.api_key)
                        errors[sym.symbol] = message
                        self.log.error(f"{sym.symbol}: {message}")
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
        frame = pl.concat(frames, how="vertical", rechunk=False) if frames else empty_normalised()
        return FetchResult(plan, frame, sorted(fetched), errors, cache_keys=cache_keys)


class GroupedStream:
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

    def __init__(
        self, engine: FetchEngine, plan: RequestPlan, progress: Progress, chunk_rows: int | None
    ) -> None:
        self.engine, self.plan, self.progress, self.chunk_rows = engine, plan, progress, chunk_rows
        self.wanted = [s.symbol for s in plan.symbols]
        self._fetch = collecting(engine.client, engine.client.grouped_day)
        # Set once a day failed or the caller stopped: queued days are then not requested.
        self.stop = threading.Event()
        self._days = iter(plan.days)
        self._pending: deque[tuple[dt.date, Future]] = deque()
        self._answered = False
        self.failures: list[str] = []
        self._start_chunk()

    def _start_chunk(self) -> None:
        self.chunk_days: list[dt.date] = []
        self.frames: list[pl.DataFrame] = []
        self.keys: list[str] = []
        self.held = 0

    def _one(self, day: dt.date) -> tuple[tuple[pl.DataFrame, int], list[str]] | None:
        """One day's wanted bars; None once another day failed (the run fails as a whole)."""
        if self.stop.is_set():
            return None  # queued days are not spent on: one failure fails every symbol
        try:
            return self._fetch(self.plan.asset_class, day, self.wanted)
        except Exception:
            self.stop.set()
            raise

    def _queue(self, pool: ThreadPoolExecutor) -> None:
        # The first day goes alone: if it is refused (a wrong key, a plan that does not cover
        # the data), no other day has been sent.
        limit = 2 * self.engine.workers if self._answered else 1
        while len(self._pending) < limit and not self.stop.is_set():
            day = next(self._days, None)
            if day is None:
                return
            self._pending.append((day, pool.submit(self._one, day)))

    def _take_oldest(self) -> bool:
        """Wait for the oldest queued day and hold its bars; True when the chunk is full."""
        day, future = self._pending.popleft()
        self.chunk_days.append(day)
        try:
            fetched = future.result()
        except Exception as exc:
            self.failures.append(failure_text(exc, self.engine.api_key))
            self.engine.log.error(self.failures[-1])
            return False
        self._answered = True
        if fetched is None or self.failures:
            return False
        (frame, page_bars), day_keys = fetched
        self.frames.append(frame)
        self.keys.extend(day_keys)
        self.held += page_bars
        self.progress.advance(detail=f"({day})")
        full = self.chunk_rows is not None and self.held >= self.chunk_rows
        return full and not self.stop.is_set()

    def _chunk(self, frames: list[pl.DataFrame], keys: list[str]) -> FetchResult:
        days = self.chunk_days
        part = dataclasses.replace(
            self.plan, days=days, start=days[0], end=days[-1], grouped_cost=len(days)
        )
        frame = pl.concat(frames, how="vertical", rechunk=False) if frames else empty_normalised()
        return FetchResult(part, frame, sorted(self.wanted), {}, cache_keys=keys)

    def _last(self, yielded: int) -> FetchResult | None:
        """The stream's last result: the failure of every symbol, the chunk held, or (for a
        plan that yielded nothing) an empty result."""
        if self.failures:
            # A missing day would make every symbol's slice incomplete, and writing it would
            # delete stored rows for that day: fail every symbol instead, so nothing is replaced.
            message = (
                f"grouped daily request failed ({len(self.failures)} of {len(self.plan.days)} "
                f"days): {self.failures[0]}"
            )
            failed = self._chunk([], [])
            return FetchResult(failed.plan, failed.frame, [], dict.fromkeys(self.wanted, message))
        if self.chunk_days:
            return self._chunk(self.frames, self.keys)
        if not yielded:
            return FetchResult(self.plan, empty_normalised(), sorted(self.wanted), {})
        return None

    def run(self) -> Iterator[FetchResult]:
        """The chunks, in day order (a generator: closing it stops the prefetch)."""
        yielded = 0
        with request_pool(self.engine.workers) as pool:
            try:
                while True:
                    self._queue(pool)
                    if not self._pending:
                        break
                    if self._take_oldest():
                        yield self._chunk(self.frames, self.keys)
                        yielded += 1
                        self._start_chunk()
                last = self._last(yielded)
                if last is not None:
                    yield last
            finally:
                self.stop.set()  # the caller stopped early, or a day failed: request nothing more
