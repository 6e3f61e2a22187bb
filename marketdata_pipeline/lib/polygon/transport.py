"""The transport under `PolygonClient`: httpx for HTTP, tenacity for retries, the request budget.

One `httpx.Client` (connection pool, keep-alive) serves a whole run and is shared by the worker
threads. Every attempt first spends one unit of the request budget. What is retried and what is not
follows the API's documented behaviour (see docs/api-keys.md); the rules are `retries.py`'s, what
each failure means is `errors.py`'s:

- 413, 429, 499 and 5xx (504 bursts with nginx HTML bodies included), timeouts, connection
  errors and truncated bodies are transient: retried with exponential backoff and jitter,
  honouring `Retry-After` when the server sends one, and never sooner than one budget slot
  (60 / requests-per-minute) after a 429. The official client retries the same set.
- 400/404 (bad request) and 401/403 (key or plan) are final: retrying cannot fix them and would
  spend quota, so they raise at once with the API's own message. A 403 NOT_AUTHORIZED about the
  data timeframe becomes a `PolygonPlanError` naming the refused window in plain words.
- Dead ends hold for the whole client (one run, `dead_ends.py`): the first request goes alone,
  and once the key is refused (401) no other request is sent; a refused connection (nothing
  listens at the base URL) is retried twice within a second, and after that no other request is
  sent either. Each is reported once through `on_dead_end`, in one line naming the URL.

Aggregates pages are kept in the page cache (`page_cache.py`) around the fetch: read back
instead of requested when kept, stored once answered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from marketdata_pipeline import __version__
from marketdata_pipeline.lib.candles.batch import SourceFamily
from marketdata_pipeline.lib.polygon.dead_ends import DeadEnds
from marketdata_pipeline.lib.polygon.errors import (
    PolygonAuthError,
    PolygonError,
    PolygonPayloadError,
    PolygonUnavailableError,
    PolygonUnreachableError,
    TransientError,
    error_for_answer,
    error_for_transport,
    redact,
)
from marketdata_pipeline.lib.polygon.page_cache import PageCache
from marketdata_pipeline.lib.polygon.paging import follow_pages
from marketdata_pipeline.lib.polygon.payload import Page, parse_json_page, parse_page
from marketdata_pipeline.lib.polygon.provenance import (
    AnsweredFamilies,
    page_cache_params,
    said_simulator,
)
from marketdata_pipeline.lib.polygon.rate_budget import RateBudget
from marketdata_pipeline.lib.polygon.retries import RequestStats, RetryPolicy

log = logging.getLogger(__name__)


class PolygonTransport:
    """GET one page of the Polygon API: retries, a budget, dead ends, the page cache."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        budget: RateBudget,
        timeout_seconds: float = 30.0,
        max_attempts: int = 8,
        backoff_initial_seconds: float = 1.0,
        backoff_max_seconds: float = 60.0,
        max_retry_after_seconds: float = 300.0,
        max_pages: int = 100,
        max_connections: int = 32,
        source: str = "polygon",
        page_cache: PageCache | None = None,
        on_dead_end: Callable[[str], None] | None = None,
    ) -> None:
        if not api_key:
            raise PolygonAuthError("no Polygon API key configured (set POLYGON_API_KEY)")
        self._api_key = api_key
        self._families = AnsweredFamilies(source)
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.max_pages = max_pages
        self.stats = RequestStats()
        self._retry = RetryPolicy(
            budget,
            self.stats,
            api_key,
            max_attempts=max_attempts,
            backoff_initial_seconds=backoff_initial_seconds,
            backoff_max_seconds=backoff_max_seconds,
            max_retry_after_seconds=max_retry_after_seconds,
        )
        # Successful pages on disk, so a killed run's rerun does not pay for them again.
        self.page_cache = page_cache
        # Told once, in one line, when a dead end (key refused, nothing listening) is met.
        self.on_dead_end = on_dead_end
        self._dead_ends = DeadEnds(self.base_url, api_key, self._report_dead_end)
        # Until the first request is answered, requests go one at a time (see the docstring).
        self._first_done = threading.Event()
        self._first_lock = threading.Lock()
        # The key goes in the Authorization header only: never in a URL, so it cannot reach
        # httpx's exception messages, our logs or Polygon's next_url echo.
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept-Encoding": "gzip",
                "User-Agent": f"marketdata-pipeline/{__version__}",
            },
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            follow_redirects=False,
        )

    # -- who answered (`provenance.py`) -------------------------------------------------------

    @property
    def source(self) -> SourceFamily:
        """The configured provenance ("polygon" or "simulator")."""
        return self._families.source

    def family_of(self, page: Page) -> SourceFamily:
        """The source family of `page`'s rows: `simulator` when this client is configured for
        the local simulator or the server said so when it answered the page, else `polygon`."""
        return self._families.family_of(page)

    def reference_family(self) -> SourceFamily:
        """Who answered this client's reference pages (splits, dividends): the prefix of
        their records' `source` (`simulator:` or `polygon:`)."""
        return self._families.reference_family()

    def answered_family(self) -> SourceFamily | None:
        """The source family of every page this client fetched (or read back from the page
        cache): what a write of their rows claims the store for. Without any page: `simulator`
        when configured so, else None (nobody answered yet). Raises `PolygonPayloadError` when
        pages of both kinds arrived (the server changed what it is mid-run): rows of one run
        are never stored as two kinds."""
        return self._families.answered(self.base_url)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> PolygonTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, with retries (`retries.py`) ----------------------------------------------

    @property
    def max_attempts(self) -> int:
        """Attempts at a request failing transiently, the first included."""
        return self._retry.max_attempts

    def _attempt(
        self,
        path: str,
        params: dict[str, str] | None,
        kind: str,
        what: str,
        parse: Callable[..., Any] = parse_page,
        window: tuple[dt.date, dt.date] | None = None,
    ) -> Any:
        self.budget.acquire()
        try:
            response = self._http.get(path, params=params)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            outcome, error = error_for_transport(exc, what)
            self.stats.record(kind, outcome)
            raise error from None
        self.stats.record(kind, str(response.status_code))
        if response.status_code != 200:
            raise error_for_answer(response, what, window)
        try:
            page = parse(response.content, request=what)
        except PolygonPayloadError as exc:
            # A cut-off or garbled 200 is usually a proxy hiccup: worth another try, and
            # reported as a payload error if it persists.
            raise TransientError(str(exc), status_code=200) from None
        simulated = said_simulator(response)
        if self.page_cache is not None and isinstance(page, Page) and not page.provisional:
            self.page_cache.store(path, page_cache_params(params, simulated), response.content)
        return self._families.mark(page, simulated)

    def _cached_page(self, path: str, params: dict[str, str] | None, what: str) -> Page | None:
        """The kept page of this request, or None. A page is cached under who answered it: the
        vendor's key first, then a simulator's (a miss costs a file lookup). Its bars carry when
        the vendor sent it, so a kept page that predates a split is seen to."""
        assert self.page_cache is not None
        for simulated in (False, True):
            cached = self.page_cache.load_page(path, page_cache_params(params, simulated))
            if cached is not None:
                body, stored_at = cached
                page = dataclasses.replace(parse_page(body, request=what), fetched_at=stored_at)
                return self._families.mark(page, simulated)
        return None

    def get_page(
        self,
        path: str,
        params: dict[str, str] | None = None,
        *,
        kind: str,
        what: str,
        parse: Callable[..., Any] = parse_page,
        window: tuple[dt.date, dt.date] | None = None,
    ) -> Any:
        """GET one page, retrying transient failures; raise a `PolygonError` when final.

        `parse(body, request=what)` decodes a 200 body (aggregates pages by default); a
        `PolygonPayloadError` from it counts as a transient failure (a cut-off body).
        `window` (first and last day asked for) is named if the plan refuses the request.
        """
        # Only aggregates pages are kept (reference data is cheap and always fetched fresh).
        if self.page_cache is not None and parse is parse_page:
            cached = self._cached_page(path, params, what)
            if cached is not None:
                return cached
        if not self._first_done.is_set():
            # The first request goes alone: a refused key or a wrong URL then costs one request
            # (and its retries), not one per worker.
            with self._first_lock:
                if not self._first_done.is_set():
                    try:
                        return self._send(path, params, kind, what, parse, window)
                    finally:
                        self._first_done.set()
        return self._send(path, params, kind, what, parse, window)

    def _send(
        self,
        path: str,
        params: dict[str, str] | None,
        kind: str,
        what: str,
        parse: Callable[..., Any],
        window: tuple[dt.date, dt.date] | None,
    ) -> Any:
        """One request with its retries, unless a dead end was met: then nothing is sent."""
        self._dead_ends.refuse_if_met(what)
        try:
            return self._retry.retrying()(self._attempt, path, params, kind, what, parse, window)
        except TransientError as exc:
            raise self._gave_up(exc, what) from None
        except PolygonError as exc:
            exc.args = (redact(str(exc), self._api_key),)
            if isinstance(exc, PolygonAuthError) and exc.status_code == 401:
                self._dead_ends.key_refused(exc)
            raise

    def _gave_up(self, exc: TransientError, what: str) -> PolygonError:
        """The final error once every retry of `what` failed transiently; a refused connection
        is a dead end (nothing listens at the base URL)."""
        text = redact(str(exc), self._api_key)
        error_cls: type[PolygonError] = PolygonUnavailableError
        if exc.refused:
            url = self._dead_ends.connection_refused()
            text = f"{text}: nothing listens at {url}"
            error_cls = PolygonUnreachableError
        elif exc.status_code == 200:
            error_cls = PolygonPayloadError
        return error_cls(
            f"{text} (gave up after {self._retry.attempts_for(exc)} attempts)",
            request=what,
            status_code=exc.status_code,
        )

    def _report_dead_end(self, line: str) -> None:
        # Looked up when met: a caller may set `on_dead_end` after building the client.
        if self.on_dead_end is not None:
            self.on_dead_end(line)

    # -- paging ---------------------------------------------------------------------------------

    def json_pages(
        self, path: str, params: dict[str, str], *, kind: str, what: str
    ) -> Iterator[dict[str, Any]]:
        """Every page of a paginated JSON endpoint (reference data), as decoded objects.

        Follows `next_url` with only its cursor (the official client does the same: the cursor
        holds the query), with the same loop and page-count guards as the aggregates. Each page
        has `status` OK and a list (possibly empty) under `results`.
        """
        return follow_pages(
            path,
            params,
            what=what,
            # A cursor may name a sibling path of the endpoint, never another API family.
            prefix=path.rsplit("/", 1)[0] + "/",
            max_pages=self.max_pages,
            get=lambda p, q: self.get_page(p, q, kind=kind, what=what, parse=parse_json_page),
            next_url_of=lambda page: page.get("next_url"),
        )
