"""The HTTP client behind `PolygonResource`: httpx for transport, tenacity for retries.

One `httpx.Client` (connection pool, keep-alive) serves a whole run and is shared by the worker
threads. Every attempt first spends one unit of the request budget. What is retried and what is not
follows the API's documented behaviour (see docs/api-keys.md):

- 413, 429, 499 and 5xx (504 bursts with nginx HTML bodies included), timeouts, connection
  errors and truncated bodies are transient: retried with exponential backoff and jitter,
  honouring `Retry-After` when the server sends one, and never sooner than one budget slot
  (60 / requests-per-minute) after a 429. The official client retries the same set.
- 400/404 (bad request) and 401/403 (key or plan) are final: retrying cannot fix them and would
  spend quota, so they raise at once with the API's own message. A 403 NOT_AUTHORIZED about the
  data timeframe becomes a `PolygonPlanError` naming the refused window in plain words.
- Dead ends hold for the whole client (one run): the first request goes alone, and once the key
  is refused (401) no other request is sent; a refused connection (nothing listens at the base
  URL) is retried twice within a second, and after that no other request is sent either. Each
  is reported once through `on_dead_end`, in one line naming the URL.
- A range whose end is before its start is never sent (the API answers 400).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import json
import logging
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import polars as pl
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    wait_exponential_jitter,
)

from marketdata_pipeline import __version__
from marketdata_pipeline.lib.candles.batch import SourceFamily, check_source_family
from marketdata_pipeline.lib.polygon.errors import (
    PolygonAuthError,
    PolygonError,
    PolygonPayloadError,
    PolygonPlanError,
    PolygonRequestError,
    PolygonUnavailableError,
    PolygonUnreachableError,
    TransientError,
    plan_refusal_message,
    redact,
)
from marketdata_pipeline.lib.polygon.page_cache import PageCache
from marketdata_pipeline.lib.polygon.payload import Page, normalise_bars, parse_page
from marketdata_pipeline.lib.polygon.rate_budget import RateBudget
from marketdata_pipeline.lib.settings import redact_url
from marketdata_pipeline.lib.symbols import CRYPTO_PREFIX, AssetClass, Symbol

log = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({413, 429, 499, 500, 502, 503, 504})
#: The header by which a simulator says so in every answer (`polygon_simulator` sends it unless
#: told to pose as the real API): its rows are then labelled `simulator:`, not `polygon:`.
SIMULATOR_HEADER = "X-Simulated"
# A simulator's pages are cached under this extra part of their key, so a page read back from
# the cache still says who answered it (the body itself has the vendor's shape).
_SIMULATED_CACHE_PART = {"_answered_by": "simulator"}


def page_cache_params(params: dict[str, str] | None, simulated: bool) -> dict[str, str] | None:
    """The query a page is cached under: the request's, plus who answered when a simulator
    did (the page cache keys pages by path and query)."""
    return {**(params or {}), **_SIMULATED_CACHE_PART} if simulated else params


#: Largest page the aggregates endpoint serves (in base bars): ~198 years of daily bars.
MAX_LIMIT = 50_000
#: Attempts at a request whose connection is refused, and the wait before the n-th retry
#: (0.25 s, 0.5 s): a server restarting is back within that, a wrong URL never is.
REFUSED_ATTEMPTS = 3
REFUSED_BACKOFF_SECONDS = 0.25


def _connection_refused(exc: BaseException) -> bool:
    """Whether a transport error is a refused connection (nothing listens at the address)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "connection refused" in str(exc).lower()


@dataclass
class RequestStats:
    """Counters of what a client actually sent, for run metadata, logs and benchmarks."""

    attempts: int = 0
    retries: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, status: str) -> None:
        """Count one attempt of `kind` ("range"/"grouped") that ended with `status`."""
        with self._lock:
            self.attempts += 1
            self.by_kind[kind] += 1
            self.by_status[status] += 1

    def record_retry(self) -> None:
        """Count one retry (an attempt after a transient failure)."""
        with self._lock:
            self.retries += 1

    def as_metadata(self) -> dict[str, object]:
        """A JSON-friendly summary."""
        with self._lock:
            return {
                "requests": self.attempts,
                "retries": self.retries,
                "by_kind": dict(self.by_kind),
                "by_status": dict(self.by_status),
            }


_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE)


def _api_message(response: httpx.Response) -> str:
    """The API's own error message: `error` (ERROR bodies) or `message` (NOT_AUTHORIZED)."""
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("error", "message"):
            if isinstance(doc.get(key), str):
                return doc[key][:300]
        if isinstance(doc.get("status"), str):
            return doc["status"]
    # 5xx from the load balancer come as HTML: keep the message short and single-line.
    text = " ".join(response.text.split())
    title = _HTML_TITLE.search(text)
    if title and title.group(1).strip():
        return f"{title.group(1).strip()[:120]} (HTML error page)"
    return (text[:120] + "...") if len(text) > 120 else text or response.reason_phrase


def said_simulator(response: httpx.Response) -> bool:
    """True when the answering server said it is a simulator (`SIMULATOR_HEADER`)."""
    return response.headers.get(SIMULATOR_HEADER, "").strip().lower() in ("true", "1")


def _retry_after_seconds(response: httpx.Response) -> float | None:
    """Parse `Retry-After` (seconds or an HTTP date); None when absent or unreadable."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def parse_json_page(body: bytes, *, request: str) -> dict[str, Any]:
    """Decode a reference-data page: one JSON object with status OK and a `results` list."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        head = body[:60].decode("utf-8", "replace")
        raise PolygonPayloadError(
            f"Polygon response for {request} is not valid JSON ({exc}); body starts {head!r}",
            request=request,
        ) from None
    if not isinstance(doc, dict):
        raise PolygonPayloadError(
            f"Polygon response for {request} is {type(doc).__name__}, expected an object",
            request=request,
        )
    if doc.get("status") != "OK":
        raise PolygonPayloadError(
            f"Polygon response for {request} has status {doc.get('status')!r}, expected OK",
            request=request,
        )
    # A missing or null `results` means no records, as in the official client.
    results = doc.get("results") or []
    if not isinstance(results, list):
        raise PolygonPayloadError(
            f"Polygon response for {request} has 'results' of type {type(results).__name__}, "
            "expected a list",
            request=request,
        )
    doc["results"] = results
    return doc


class PolygonClient:
    """Polygon aggregates and reference data over HTTP: retries, a budget, paging guards."""

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
        adjusted: bool = True,
        page_limit: int = MAX_LIMIT,
        source: str = "polygon",
        page_cache: PageCache | None = None,
        on_dead_end: Callable[[str], None] | None = None,
    ) -> None:
        if not api_key:
            raise PolygonAuthError("no Polygon API key configured (set POLYGON_API_KEY)")
        self._api_key = api_key
        # The configured provenance: "simulator" when the command line started the local one
        # (every row is then simulated), else "polygon" unless a page's answer says otherwise.
        self.source = check_source_family(source, "PolygonClient source")
        # The families the pages of this client's run were answered as (`answered_family`).
        self._families_seen: set[SourceFamily] = set()
        self._families_lock = threading.Lock()
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.max_attempts = max_attempts
        self.backoff_initial_seconds = backoff_initial_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.max_pages = max_pages
        self.adjusted = adjusted
        if not 1 <= page_limit <= MAX_LIMIT:
            raise ValueError(f"page_limit must be between 1 and {MAX_LIMIT}, got {page_limit}")
        self.page_limit = page_limit
        self.stats = RequestStats()
        # Successful pages on disk, so a killed run's rerun does not pay for them again.
        self.page_cache = page_cache
        # Told once, in one line, when a dead end (key refused, nothing listening) is met.
        self.on_dead_end = on_dead_end
        self._dead_end: PolygonError | None = None
        self._dead_end_lock = threading.Lock()
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

    # -- who answered -------------------------------------------------------------------------

    def family_of(self, page: Page) -> SourceFamily:
        """The source family of `page`'s rows: `simulator` when this client is configured for
        the local simulator or the server said so when it answered the page, else `polygon`."""
        return "simulator" if self.source == "simulator" or page.simulated else "polygon"

    def _answered(self, page: Any, simulated: bool) -> Any:
        """`page` marked with who answered it; the family is noted for `answered_family`."""
        if not isinstance(page, Page):
            return page  # reference data: no candle rows, no label
        if simulated:
            page = dataclasses.replace(page, simulated=True)
        with self._families_lock:
            self._families_seen.add(self.family_of(page))
        return page

    def answered_family(self) -> SourceFamily | None:
        """The source family of every page this client fetched (or read back from the page
        cache): what a write of their rows claims the store for. Without any page: `simulator`
        when configured so, else None (nobody answered yet). Raises `PolygonPayloadError` when
        pages of both kinds arrived (the server changed what it is mid-run): rows of one run
        are never stored as two kinds."""
        with self._families_lock:
            seen = sorted(self._families_seen)
        if len(seen) > 1:
            raise PolygonPayloadError(
                f"the API at {self.base_url} answered this run both as a simulator and as "
                "Polygon (the server changed, or cached pages of another server were read): "
                "nothing of the run is stored; rerun it"
            )
        if seen:
            return seen[0]
        return "simulator" if self.source == "simulator" else None

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> PolygonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one request, with retries ------------------------------------------------------------

    def _attempts_for(self, exc: BaseException | None) -> int:
        """Attempts allowed for a request whose last attempt failed with `exc`."""
        refused = isinstance(exc, TransientError) and exc.refused
        return REFUSED_ATTEMPTS if refused else self.max_attempts

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return state.attempt_number >= self._attempts_for(exc)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.refused:
            return REFUSED_BACKOFF_SECONDS * 2 ** (state.attempt_number - 1)
        backoff = wait_exponential_jitter(
            initial=self.backoff_initial_seconds, max=self.backoff_max_seconds
        )(state)
        if isinstance(exc, TransientError):
            if exc.retry_after is not None:
                return min(exc.retry_after, self.max_retry_after_seconds)
            if exc.status_code == 429:
                # Without Retry-After, wait at least one budget slot: retrying sooner is
                # guaranteed to be refused again and spends quota.
                return max(backoff, self.budget.window_seconds / self.budget.requests_per_minute)
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.record_retry()
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s; retry %d/%d in %.1fs",
            redact(str(exc), self._api_key),
            state.attempt_number,
            self._attempts_for(exc) - 1,
            delay,
        )

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
        except httpx.TimeoutException as exc:
            self.stats.record(kind, "timeout")
            raise TransientError(f"{what}: timed out ({exc.__class__.__name__})") from None
        except httpx.DecodingError as exc:
            # A gzip body cut off or garbled on the way: as transient as a truncated body.
            self.stats.record(kind, "decoding-error")
            raise TransientError(f"{what}: undecodable body ({exc.__class__.__name__})") from None
        except httpx.ConnectError as exc:
            refused = _connection_refused(exc)
            self.stats.record(kind, "connection-refused" if refused else "connection-error")
            how = "refused" if refused else "failed"
            raise TransientError(
                f"{what}: connection {how} ({exc.__class__.__name__})", refused=refused
            ) from None
        except httpx.TransportError as exc:
            # Connection reset, incomplete body: the server or network hiccuped.
            self.stats.record(kind, "connection-error")
            raise TransientError(f"{what}: connection failed ({exc.__class__.__name__})") from None
        self.stats.record(kind, str(response.status_code))
        status = response.status_code
        if status == 200:
            try:
                page = parse(response.content, request=what)
            except PolygonPayloadError as exc:
                # A cut-off or garbled 200 is usually a proxy hiccup: worth another try, and
                # reported as a payload error if it persists.
                raise TransientError(str(exc), status_code=200) from None
            simulated = said_simulator(response)
            if self.page_cache is not None and isinstance(page, Page) and not page.provisional:
                self.page_cache.store(path, page_cache_params(params, simulated), response.content)
            return self._answered(page, simulated)
        message = _api_message(response)
        if status in RETRYABLE_STATUS:
            raise TransientError(
                f"{what}: HTTP {status} {message}",
                status_code=status,
                retry_after=_retry_after_seconds(response),
            )
        # "Your plan doesn't include this data timeframe": dates outside the plan's window.
        # Other 403s ("not entitled to this data") concern the product, not the dates.
        if status == 403 and "timeframe" in message.lower():
            raise PolygonPlanError(
                plan_refusal_message(what, window, message),
                window=window,
                request=what,
                api_message=message,
            )
        if status in (401, 403):
            hint = (
                "check POLYGON_API_KEY"
                if status == 401
                else "the API plan does not cover this data (dates too old or in the future?)"
            )
            raise PolygonAuthError(
                f"Polygon refused {what}: HTTP {status} {message} ({hint}; not retried)",
                request=what,
                status_code=status,
                api_message=message,
            )
        raise PolygonRequestError(
            f"Polygon rejected {what}: HTTP {status} {message} (not retried)",
            request=what,
            status_code=status,
            api_message=message,
        )

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
            # A page is cached under who answered it: the vendor's key first, then a
            # simulator's (a miss costs a file lookup). Its bars carry when the vendor sent
            # it, so a kept page that predates a split is seen to.
            for simulated in (False, True):
                cached = self.page_cache.load_page(path, page_cache_params(params, simulated))
                if cached is not None:
                    body, stored_at = cached
                    page = dataclasses.replace(parse_page(body, request=what), fetched_at=stored_at)
                    return self._answered(page, simulated)
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
        if self._dead_end is not None:
            raise type(self._dead_end)(
                f"{what} not requested: {self._dead_end}",
                request=what,
                status_code=self._dead_end.status_code,
            )
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            return retrying(self._attempt, path, params, kind, what, parse, window)
        except TransientError as exc:
            text = redact(str(exc), self._api_key)
            if exc.refused:
                url = redact_url(self.base_url)
                self._met_dead_end(
                    PolygonUnreachableError(
                        f"nothing listens at {url} (connection refused on an earlier request)"
                    ),
                    f"cannot connect to the Polygon API at {url}: connection refused (nothing "
                    "listens there: check POLYGON_BASE_URL)",
                )
                text = f"{text}: nothing listens at {url}"
                error_cls: type[PolygonError] = PolygonUnreachableError
            elif exc.status_code == 200:
                error_cls = PolygonPayloadError
            else:
                error_cls = PolygonUnavailableError
            raise error_cls(
                f"{text} (gave up after {self._attempts_for(exc)} attempts)",
                request=what,
                status_code=exc.status_code,
            ) from None
        except PolygonError as exc:
            exc.args = (redact(str(exc), self._api_key),)
            if isinstance(exc, PolygonAuthError) and exc.status_code == 401:
                refusal = f"HTTP 401 {exc.api_message} (check POLYGON_API_KEY)"
                self._met_dead_end(
                    PolygonAuthError(
                        f"the API key was refused on an earlier request ({refusal})",
                        status_code=401,
                        api_message=exc.api_message,
                    ),
                    f"the Polygon API at {redact_url(self.base_url)} refused the key: "
                    f"{refusal}; nothing more was requested",
                )
            raise

    def _met_dead_end(self, error: PolygonError, line: str) -> None:
        """Remember the first dead end (`error` for every request not sent after it) and report
        it once, as `line`."""
        with self._dead_end_lock:
            if self._dead_end is not None:
                return
            self._dead_end = error
        if self.on_dead_end is not None:
            self.on_dead_end(redact(line, self._api_key))

    # -- endpoints ---------------------------------------------------------------------------

    def _next_path(
        self, next_url: str, what: str, prefix: str = "/v2/aggs/"
    ) -> tuple[str, dict[str, str]]:
        """Path and query of a `next_url`, to be joined onto our own base URL.

        The host in `next_url` is never trusted (it has been seen as `:443:443`); only the path
        and the cursor are kept, as the official client does, and auth stays in the header.
        """
        parts = urlsplit(next_url)
        if not parts.path.startswith(prefix):
            raise PolygonPayloadError(
                f"Polygon response for {what} has an unexpected next_url path {parts.path!r}",
                request=what,
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items() if k.lower() != "apikey"}
        return parts.path, query

    def _follow(
        self,
        path: str,
        params: dict[str, str],
        *,
        what: str,
        prefix: str,
        get: Callable[[str, dict[str, str]], Any],
        next_url_of: Callable[[Any], str | None],
    ) -> Iterator[Any]:
        """Pages from `get(path, params)` on, following `next_url` with loop and count guards."""
        seen: set[str] = set()
        for page_number in range(1, self.max_pages + 1):
            page = get(path, params)
            yield page
            next_url = next_url_of(page)
            if not next_url:
                return
            path, params = self._next_path(next_url, what, prefix=prefix)
            cursor_key = f"{path}?{sorted(params.items())}"
            if cursor_key in seen:
                raise PolygonPayloadError(
                    f"Polygon pagination for {what} repeats a next_url after page "
                    f"{page_number}: stopping instead of looping",
                    request=what,
                )
            seen.add(cursor_key)
        raise PolygonPayloadError(
            f"Polygon pagination for {what} exceeds {self.max_pages} pages: stopping",
            request=what,
        )

    def json_pages(
        self, path: str, params: dict[str, str], *, kind: str, what: str
    ) -> Iterator[dict[str, Any]]:
        """Every page of a paginated JSON endpoint (reference data), as decoded objects.

        Follows `next_url` with only its cursor (the official client does the same: the cursor
        holds the query), with the same loop and page-count guards as the aggregates. Each page
        has `status` OK and a list (possibly empty) under `results`.
        """
        return self._follow(
            path,
            params,
            what=what,
            # A cursor may name a sibling path of the endpoint, never another API family.
            prefix=path.rsplit("/", 1)[0] + "/",
            get=lambda p, q: self.get_page(p, q, kind=kind, what=what, parse=parse_json_page),
            next_url_of=lambda page: page.get("next_url"),
        )

    def range_pages(self, symbol: Symbol, start: dt.date, end: dt.date) -> Iterator[Page]:
        """Every page of daily bars for `symbol` from `start` to `end` (inclusive)."""
        what = f"{symbol.symbol} ({symbol.asset_class}) {start}..{end}"
        if end < start:
            # The API answers 400 for `to` before `from`: never spend a request on it.
            raise PolygonRequestError(
                f"refusing to request {what}: the end {end} is before the start {start}",
                request=what,
            )
        path = f"/v2/aggs/ticker/{symbol.api_ticker}/range/1/day/{start}/{end}"
        params: dict[str, str] = {
            "adjusted": "true" if self.adjusted else "false",
            "sort": "asc",
            "limit": str(self.page_limit),
        }

        def get(path: str, params: dict[str, str]) -> Page:
            page = self.get_page(path, params, kind="range", what=what, window=(start, end))
            if page.ticker is not None and page.ticker != symbol.api_ticker:
                raise PolygonPayloadError(
                    f"Polygon response for {what} is for ticker {page.ticker!r}",
                    request=what,
                )
            return page

        return self._follow(
            path,
            params,
            what=what,
            prefix="/v2/aggs/",
            get=get,
            next_url_of=lambda page: page.next_url,
        )

    def fetch_range(self, symbol: Symbol, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Normalised daily bars (candle schema plus helper columns) for one symbol."""
        fetched_at = dt.datetime.now(dt.UTC)
        frames = [
            normalise_bars(
                page.bars,
                asset_class=symbol.asset_class,
                endpoint="range",
                symbol=symbol.symbol,
                adjusted=page.adjusted if page.adjusted is not None else self.adjusted,
                provisional=page.provisional,
                fetched_at=page.fetched_at or fetched_at,
                source=f"{self.family_of(page)}:range",
            )
            for page in self.range_pages(symbol, start, end)
        ]
        return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]

    def fetch_grouped(
        self, asset_class: AssetClass, day: dt.date, symbols: Collection[str] | None = None
    ) -> pl.DataFrame:
        """Normalised bars of the whole market for one day (grouped daily endpoint).

        With `symbols` (canonical names), only their bars: the page is filtered before it is
        normalised, so a run asking for part of a 10,000-ticker market pays for its part.
        """
        return self.grouped_day(asset_class, day, symbols)[0]

    def grouped_day(
        self, asset_class: AssetClass, day: dt.date, symbols: Collection[str] | None = None
    ) -> tuple[pl.DataFrame, int]:
        """`fetch_grouped`'s bars, and how many bars the page carried before the filter."""
        if asset_class is AssetClass.STOCK:
            path = f"/v2/aggs/grouped/locale/us/market/stocks/{day}"
        else:
            path = f"/v2/aggs/grouped/locale/global/market/crypto/{day}"
        what = f"grouped daily {asset_class} {day}"
        params = {"adjusted": "true" if self.adjusted else "false"}
        fetched_at = dt.datetime.now(dt.UTC)
        page = self.get_page(path, params, kind="grouped", what=what, window=(day, day))
        bars = page.bars
        if symbols is not None:
            # The same name `normalise_bars` gives a bar (crypto tickers lose their `X:`).
            ticker = pl.col("T")
            if asset_class is AssetClass.CRYPTO:
                ticker = ticker.str.strip_prefix(CRYPTO_PREFIX)
            bars = bars.filter(ticker.is_in(list(symbols)))
        frame = normalise_bars(
            bars,
            asset_class=asset_class,
            endpoint="grouped",
            adjusted=page.adjusted if page.adjusted is not None else self.adjusted,
            provisional=page.provisional,
            fetched_at=page.fetched_at or fetched_at,
            source=f"{self.family_of(page)}:grouped",
        )
        return frame, page.bars.height
