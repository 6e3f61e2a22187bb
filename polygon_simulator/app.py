"""The Starlette app of the Polygon simulator: the API routes our pipeline uses, and `/_sim/`.

API routes (real paths and shapes; every response of the app, control routes and errors
included, has `X-Simulated: true` unless the config's `identify` is off, when the simulator
poses as the real API):

- `GET /v2/aggs/ticker/{ticker}/range/1/day/{from}/{to}` with `adjusted`, `sort`, `limit`, `cursor`
- `GET /v2/aggs/grouped/locale/us/market/stocks/{date}` with `adjusted`, `include_otc` (ignored)
- `GET /v2/aggs/grouped/locale/global/market/crypto/{date}` with `adjusted`
- `GET /stocks/v1/splits`, `/stocks/v1/dividends` and the deprecated `/v3/reference/splits`,
  `/v3/reference/dividends`: the configured corporate actions, with the real filters,
  `limit`/`sort` and `next_url` cursors (see corporate_actions.py)
- `GET /v3/reference/tickers`, `/v3/reference/tickers/{ticker}` and
  `/vX/reference/tickers/{id}/events`: the ticker reference of the universe and the configured
  listings (renames, reused tickers, delistings; see listings.py)

Each API request goes: optional latency -> auth -> rate limit -> first matching fault -> answer,
and is counted and logged whatever the outcome.

Like the real API: `to` before `from` answers 400; dates outside the plan's window (before
`history_start`, or after today) answer 403 NOT_AUTHORIZED; a ticker outside the simulator's
universe (case-sensitive: `KIMpL` is known, `KIMPL` is not) answers an empty 200; bodies are
gzipped when the client accepts gzip.

Control routes (no auth, not counted): `GET /_sim/health`, `GET /_sim/stats[?log=false]`,
`POST /_sim/reset`, `GET|POST|DELETE /_sim/faults`, `DELETE /_sim/faults/{id}`,
`GET|POST /_sim/config`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from polygon_simulator import faults as fault_bodies
from polygon_simulator import market
from polygon_simulator.calendar import NEW_YORK, UTC
from polygon_simulator.corporate_actions import (
    ENDPOINTS,
    EventQueryError,
    decode_event_cursor,
    encode_event_cursor,
    executed_factors,
    factors_by_ticker,
    list_events,
)
from polygon_simulator.faults import FaultRule
from polygon_simulator.listings import (
    TickerRow,
    list_tickers,
    ticker_details,
    ticker_events,
    ticker_rows,
)
from polygon_simulator.pages import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    GroupedBody,
    RangeBody,
    build_grouped_page,
    build_range_page,
    decode_cursor,
    dumps,
    encode_cursor,
)
from polygon_simulator.ratelimit import retry_after_header
from polygon_simulator.state import ConfigError, SimulatorState

logger = logging.getLogger(__name__)

JSON = "application/json"
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MS_RE = re.compile(r"^\d{1,15}$")


class SimulatedConnectionReset(Exception):
    """Raised mid-response by the `reset` fault so uvicorn drops the connection."""


class _DropSimulatedResets(logging.Filter):
    """Keep uvicorn from logging a traceback for every deliberate connection reset."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        while exc is not None:
            if isinstance(exc, SimulatedConnectionReset):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


def _install_reset_log_filter() -> None:
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropSimulatedResets) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_DropSimulatedResets())


class BadRequest(Exception):
    """A request parameter the real API would reject with 400; the message is the error text."""


class NotAuthorized(Exception):
    """Dates the plan does not serve: the real API answers 403 NOT_AUTHORIZED."""


class NotFound(Exception):
    """A reference id nobody has: the real API answers 404 NOT_FOUND with this message."""


class _SwitchableGZip:
    """Starlette's gzip middleware, applied only while the config's `gzip` switch is on."""

    def __init__(self, app: Any, state: SimulatorState) -> None:
        self.plain = app
        # Level 1: most of the size win at a fraction of the CPU of higher levels, so the simulator
        # stays fast enough for the throughput benchmarks.
        self.gzipped = GZipMiddleware(app, minimum_size=500, compresslevel=1)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.gzipped if self.state.config.gzip else self.plain
        await app(scope, receive, send)


class _Identify:
    """Adds `X-Simulated: true` to every response while the config's `identify` is on.

    One place for every answer (API, errors, faults, control routes), so a client can always
    tell the simulator from the vendor; with `identify` off nothing betrays it.
    """

    def __init__(self, app: Any, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.state.config.identify:
            await self.app(scope, receive, send)
            return

        async def send_identified(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-simulated", b"true")],
                }
            await send(message)

        await self.app(scope, receive, send_identified)


def _headers(request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"X-Request-Id": request_id}
    if extra:
        headers.update(extra)
    return headers


def _json(status: int, payload: Any, request_id: str, extra: dict[str, str] | None = None):
    return Response(dumps(payload), status, _headers(request_id, extra), media_type=JSON)


def _error(status: int, request_id: str, message: str | None = None, **extra: str) -> Response:
    payload = fault_bodies.error_payload(status, request_id, message)
    return _json(status, payload, request_id, extra or None)


class _ResetResponse(Response):
    """Sends the head and half the body, then raises so the server drops the connection."""

    def __init__(self, body: bytes, request_id: str) -> None:
        super().__init__(body, 200, _headers(request_id), media_type=JSON)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )
        # Give the event loop a turn so the partial body reaches the socket before the close.
        await asyncio.sleep(0)
        raise SimulatedConnectionReset("simulated connection reset by the Polygon simulator")


# --- parameter parsing --------------------------------------------------------------------------


def _parse_bool(value: str | None, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"Could not parse the query parameter: '{name}'. Use true or false")


def _parse_sort(value: str | None) -> str:
    if value is None or value == "":
        return "asc"
    if value not in ("asc", "desc"):
        raise BadRequest("Could not parse the query parameter: 'sort'. Use asc or desc")
    return value


def _parse_limit(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise BadRequest(
            f"Could not parse the query parameter: 'limit'. Use an integer from 1 to {MAX_LIMIT}"
        )
    # Like the real API, asking for more than the maximum gets the maximum.
    return min(limit, MAX_LIMIT)


def _parse_time(value: str, name: str, crypto: bool) -> dt.date:
    """`YYYY-MM-DD`, or Unix ms snapped to its market day (New York for stocks, UTC crypto)."""
    message = f"Could not parse the time parameter: '{name}'. Use YYYY-MM-DD or Unix MS Timestamps"
    try:
        if _DATE_RE.match(value):
            return dt.date.fromisoformat(value)
        if _MS_RE.match(value):
            instant = dt.datetime.fromtimestamp(int(value) / 1000, tz=UTC)
            return instant.astimezone(UTC if crypto else NEW_YORK).date()
    except (ValueError, OverflowError, OSError):
        pass
    raise BadRequest(message)


def _parse_date(value: str) -> dt.date:
    try:
        if _DATE_RE.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise BadRequest("Could not parse the time parameter: 'date'. Use YYYY-MM-DD")


def _next_cursor_url(
    request: Request, pairs: list[tuple[str, str]], next_offset: int | None
) -> str | None:
    """The `next_url` of a cursor-paged reference answer (None on its last page): the same
    path with only a cursor, which holds the query, as the vendor's are."""
    if next_offset is None:
        return None
    return (
        f"{_base_url(request)}{request.url.path}?cursor={encode_event_cursor(pairs, next_offset)}"
    )


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# --- the API ------------------------------------------------------------------------------------

# Builds the normal body of a request (may raise BadRequest); faults then edit or replace it.
Producer = Callable[
    [Request, str], Awaitable["RangeBody | GroupedBody | EventsBody | ReferenceBody"]
]


@dataclass
class EventsBody:
    """A splits/dividends response: `results`, `status`, `request_id`, optional `next_url`."""

    results: list[dict[str, Any]]
    request_id: str
    next_url: str | None

    def as_dict(self) -> dict[str, Any]:
        """The body as the real API sends it (key order of the samples)."""
        body: dict[str, Any] = {}
        if self.next_url is not None:
            body["next_url"] = self.next_url
        body["request_id"] = self.request_id
        body["results"] = self.results
        body["status"] = "OK"
        return body

    def to_bytes(self) -> bytes:
        """The body as compact JSON."""
        return dumps(self.as_dict()).encode()


@dataclass
class ReferenceBody:
    """A ticker-reference response: `results` (a list or one object), `status`, `request_id`,
    `count` for lists, optional `next_url` (key order of the client's mocks)."""

    results: Any
    request_id: str
    next_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The body as the real API sends it."""
        body: dict[str, Any] = {"results": self.results, "status": "OK"}
        body["request_id"] = self.request_id
        if isinstance(self.results, list):
            body["count"] = len(self.results)
        if self.next_url is not None:
            body["next_url"] = self.next_url
        return body

    def to_bytes(self) -> bytes:
        """The body as compact JSON."""
        return dumps(self.as_dict()).encode()


class _Api:
    """The API route handlers over one SimulatorState."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self.cache = state.body_cache

    async def _serve(
        self, request: Request, kind: str, ticker: str | None, produce: Producer
    ) -> Response:
        """Latency, auth, rate limit, faults, answer; then count and log the request."""
        arrival = time.time()
        generation = self.state.generation
        request_id = uuid.uuid4().hex
        query = request.query_params
        fault: FaultRule | None = None
        try:
            latency = self.state.config.latency_seconds
            if latency > 0:
                await asyncio.sleep(latency)
            response = self._check_auth(request, request_id) or self._check_rate(request_id)
            if response is None:
                fault = self.state.faults_book.take(request.url.path, kind, ticker)
                response = await self._answer(request, request_id, produce, fault)
        except Exception:  # a simulator bug must still be counted, and look like a server error
            logger.exception("simulator failed on %s", request.url.path)
            response = _error(500, request_id, "Internal simulator error")
        self.state.record(
            arrival=arrival,
            path=request.url.path,
            query=urlencode([(k, v) for k, v in query.multi_items() if k != "apiKey"]),
            kind=kind,
            ticker=ticker,
            status=response.status_code,
            api_key_in_query="apiKey" in query,
            fault=fault.kind if fault is not None else None,
            generation=generation,
        )
        return response

    def _check_auth(self, request: Request, request_id: str) -> Response | None:
        # Polygon accepts `Authorization: Bearer <key>` or `?apiKey=<key>`.
        token = None
        header = request.headers.get("authorization")
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                token = value.strip()
        if token is None:
            token = request.query_params.get("apiKey") or None
        if token is None:
            return _error(401, request_id, "API Key was not provided")
        if not secrets.compare_digest(token.encode(), self.state.config.api_key.encode()):
            return _error(401, request_id, "Unknown API Key")
        return None

    def _check_rate(self, request_id: str) -> Response | None:
        wait = self.state.check_rate_limit()
        if wait is None:
            return None
        extra = {}
        if self.state.config.rate_limit_retry_after:
            extra["Retry-After"] = retry_after_header(wait)
        return _error(429, request_id, fault_bodies.RATE_LIMIT_MESSAGE, **extra)

    async def _answer(
        self, request: Request, request_id: str, produce: Producer, fault: FaultRule | None
    ) -> Response:
        early = await self._fault_before_producing(fault, request_id)
        if early is not None:
            return early
        try:
            body = await produce(request, request_id)
        except BadRequest as exc:
            return _error(400, request_id, str(exc))
        except NotAuthorized:
            return _error(403, request_id, fault_bodies.NOT_AUTHORIZED_MESSAGE)
        except NotFound as exc:
            return _error(404, request_id, str(exc))
        if fault is None or fault.kind == "delay":
            return Response(body.to_bytes(), 200, _headers(request_id), media_type=JSON)
        return self._faulted_page(request, request_id, body, fault)

    async def _fault_before_producing(
        self, fault: FaultRule | None, request_id: str
    ) -> Response | None:
        """The answer of a fault that needs no page (a status, a body that is not JSON), or
        None; a `delay` fault waits here first."""
        if fault is None:
            return None
        if fault.kind == "status":
            return self._status_fault(fault, request_id)
        if fault.kind == "delay":
            await asyncio.sleep(fault.seconds)
        if fault.kind == "invalid_json":
            return Response(
                fault_bodies.invalid_json_body(fault.body),
                200,
                _headers(request_id),
                media_type="text/html" if fault.body == "html" else JSON,
            )
        return None

    def _faulted_page(
        self,
        request: Request,
        request_id: str,
        body: RangeBody | GroupedBody | EventsBody | ReferenceBody,
        fault: FaultRule,
    ) -> Response:
        """The page `body` as a fault of `fault.kind` spoils it."""
        kind = fault.kind
        if kind == "reset":
            return _ResetResponse(body.to_bytes(), request_id)
        if kind == "truncated_json":
            raw = body.to_bytes()
            return Response(raw[: len(raw) // 2], 200, _headers(request_id), media_type=JSON)
        if kind == "next_url_loop":
            body.next_url = self._same_url(request, body)
            return Response(body.to_bytes(), 200, _headers(request_id), media_type=JSON)
        payload = body.as_dict()
        if kind == "delayed_status":
            payload["status"] = "DELAYED"
        elif kind == "results_count_mismatch":
            payload["resultsCount"] = payload.get("resultsCount", 0) + 1
            payload["count"] = payload.get("count", 0) + 1
        elif kind == "bad_bars" and payload.get("results"):
            payload["results"] = fault_bodies.corrupt_results(payload["results"], fault.corrupt)
            payload["resultsCount"] = payload["queryCount"] = payload["count"] = len(
                payload["results"]
            )
        # allow_nan: the `nan_literal` corruption deliberately writes a bare NaN token.
        text = json.dumps(payload, separators=(",", ":"), allow_nan=True)
        return Response(text, 200, _headers(request_id), media_type=JSON)

    @staticmethod
    def _status_fault(fault: FaultRule, request_id: str) -> Response:
        extra = {}
        if fault.retry_after is not None:
            seconds = fault.retry_after
            extra["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        if fault.body == "html":
            html = fault_bodies.nginx_html(fault.status_code)
            return Response(
                html, fault.status_code, _headers(request_id, extra), media_type="text/html"
            )
        return _error(fault.status_code, request_id, fault.message, **extra)

    @staticmethod
    def _same_url(request: Request, body: RangeBody | GroupedBody | EventsBody) -> str:
        # The loop points at exactly this request again: same path, same (or an equivalent)
        # cursor, never the API key.
        url = _base_url(request) + request.url.path
        if isinstance(body, GroupedBody):
            return url
        if isinstance(body, EventsBody | ReferenceBody):
            return str(request.url.remove_query_params("apiKey"))
        cursor = request.query_params.get("cursor")
        if cursor is None:
            limit = _parse_limit(request.query_params.get("limit"))
            sort = _parse_sort(request.query_params.get("sort"))
            cursor = encode_cursor(limit, sort, body.adjusted)
        return f"{url}?cursor={cursor}"

    # --- routes ---------------------------------------------------------------------------------

    async def range_aggs(self, request: Request) -> Response:
        """`GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`."""
        ticker = request.path_params["ticker"]
        return await self._serve(request, "range", ticker, self._range_body)

    async def _range_body(self, request: Request, request_id: str) -> RangeBody:
        params = request.path_params
        ticker = params["ticker"]
        if params["multiplier"] != "1" or params["timespan"] != "day":
            raise BadRequest(
                "The simulator serves daily bars only: use multiplier 1 and timespan day "
                f"(got {params['multiplier']}/{params['timespan']})"
            )
        crypto = market.is_crypto(ticker)
        start = _parse_time(params["from_"], "from", crypto)
        end = _parse_time(params["to"], "to", crypto)
        if end < start:
            raise BadRequest(
                "Could not parse the time parameters: 'to' must not be before 'from' "
                f"(got from {params['from_']}, to {params['to']})"
            )
        self._check_plan(start, end)
        query = request.query_params
        cursor = query.get("cursor")
        if cursor is not None:
            try:
                decoded = decode_cursor(cursor)
            except ValueError:
                raise BadRequest("Failed to parse query parameters: invalid cursor") from None
            limit = _parse_limit(decoded.get("limit"))
            sort = _parse_sort(decoded.get("sort"))
            adjusted = _parse_bool(decoded.get("adjusted"), "adjusted", True)
        else:
            limit = _parse_limit(query.get("limit"))
            sort = _parse_sort(query.get("sort"))
            adjusted = _parse_bool(query.get("adjusted"), "adjusted", True)

        config = self.state.config
        # Days from today on have no bar yet; an unknown-format ticker has none at all (the
        # real API answers 200 with no results for a ticker without trades).
        last = min(end, self.state.today() - dt.timedelta(days=1))
        if not market.is_valid_ticker(ticker) or not self.state.knows(ticker):
            last = start - dt.timedelta(days=1)
        conventions = config.conventions
        splits = executed_factors(config.splits, ticker, self.state.today())
        # A listed ticker trades only while a listing holds it, at its holder's prices.
        world = self.state.world()
        segments = world.segments(ticker) if ticker in world.governed else None
        key = (
            "range",
            ticker,
            start,
            last,
            sort,
            limit,
            config.revision,
            config.revision_from,
            conventions,
            segments,
        ) + ((splits, adjusted) if splits else ())
        page = self.cache.get_or_build(
            key,
            lambda: build_range_page(
                ticker,
                start,
                last,
                sort=sort,
                limit=limit,
                revision=config.revision,
                revision_from=config.revision_from,
                conventions=conventions,
                splits=splits,
                adjusted=adjusted,
                segments=segments,
            ),
            lambda p: len(p.results_json or b""),
        )
        next_url = None
        if page.next_ms is not None:
            # Like the real API: asc rewrites `from` to the next bar's t; for desc (undocumented)
            # we rewrite `to`. The URL is absolute, built from this request's own base URL.
            first, last_seg = (
                (page.next_ms, params["to"]) if sort == "asc" else (params["from_"], page.next_ms)
            )
            next_url = (
                f"{_base_url(request)}/v2/aggs/ticker/{ticker}/range/1/day/{first}/{last_seg}"
                f"?cursor={encode_cursor(limit, sort, adjusted)}"
            )
        return RangeBody(ticker, adjusted, page, request_id, next_url)

    async def grouped_stocks(self, request: Request) -> Response:
        """`GET /v2/aggs/grouped/locale/us/market/stocks/{date}`."""
        return await self._serve(request, "grouped", None, self._grouped_stocks_body)

    async def grouped_crypto(self, request: Request) -> Response:
        """`GET /v2/aggs/grouped/locale/global/market/crypto/{date}`."""
        return await self._serve(request, "grouped", None, self._grouped_crypto_body)

    async def _grouped_stocks_body(self, request: Request, request_id: str) -> GroupedBody:
        return self._grouped_body(request, request_id, crypto=False)

    async def _grouped_crypto_body(self, request: Request, request_id: str) -> GroupedBody:
        return self._grouped_body(request, request_id, crypto=True)

    def _check_plan(self, first: dt.date, last: dt.date) -> None:
        """Raise NotAuthorized when [first, last] reaches outside the plan's window."""
        config = self.state.config
        if config.history_start is not None and first < config.history_start:
            raise NotAuthorized
        if config.refuse_future and last > self.state.today():
            raise NotAuthorized

    def _grouped_body(self, request: Request, request_id: str, *, crypto: bool) -> GroupedBody:
        day = _parse_date(request.path_params["date"])
        self._check_plan(day, day)
        adjusted = _parse_bool(request.query_params.get("adjusted"), "adjusted", True)
        config = self.state.config
        traded = day < self.state.today() and market.FIRST_DAY <= day <= market.LAST_DAY
        if not crypto:
            traded = traded and market.has_stock_session(day)
        tickers = self.state.crypto_tickers() if crypto else self.state.stock_tickers()
        tickers = tickers if traded else ()
        params = None
        extras = [] if crypto or not traded else self.state.world().grouped_extras(day)
        if extras:
            # Listed tickers held that day trade at their holder's prices.
            params = tuple(market.ticker_params(t) for t in tickers) + tuple(p for _, p in extras)
            tickers = tickers + tuple(t for t, _ in extras)
        conventions = config.conventions
        splits = {} if crypto else factors_by_ticker(config.splits, self.state.today())
        key = (
            "grouped",
            crypto,
            day,
            tickers,
            params,
            config.revision,
            config.revision_from,
            conventions,
        ) + ((tuple(sorted(splits.items())), adjusted) if splits else ())
        page = self.cache.get_or_build(
            key,
            lambda: build_grouped_page(
                tickers,
                day,
                revision=config.revision,
                revision_from=config.revision_from,
                conventions=conventions,
                splits=splits,
                adjusted=adjusted,
                params=params,
            ),
            lambda p: len(p.results_json or b""),
        )
        return GroupedBody(adjusted, page, request_id)

    async def reference_events(self, request: Request) -> Response:
        """`GET /stocks/v1/{splits,dividends}` and `/v3/reference/{splits,dividends}`."""
        kind = ENDPOINTS[request.url.path].kind
        return await self._serve(request, kind, None, self._events_body)

    async def _events_body(self, request: Request, request_id: str) -> EventsBody:
        spec = ENDPOINTS[request.url.path]
        cursor = request.query_params.get("cursor")
        try:
            if cursor is not None:
                # Like the real API, a next_url carries only the cursor: it holds the query.
                pairs, offset = decode_event_cursor(cursor)
            else:
                pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "apiKey"]
                offset = 0
            config = self.state.config
            records, next_offset = list_events(
                spec,
                pairs,
                offset,
                splits=config.splits,
                dividends=config.dividends,
                today=self.state.today(),
            )
        except EventQueryError as exc:
            raise BadRequest(str(exc)) from None
        next_url = _next_cursor_url(request, pairs, next_offset)
        return EventsBody(records, request_id, next_url)

    def _ticker_rows(self) -> tuple[TickerRow, ...]:
        config = self.state.config
        crypto = market.crypto_universe(config.crypto_universe_size)
        crypto = crypto + tuple(t for t in config.extra_crypto_tickers if t not in set(crypto))
        stocks = self.state.stock_tickers()
        return ticker_rows(stocks, crypto, config.listings)

    async def tickers(self, request: Request) -> Response:
        """`GET /v3/reference/tickers`: the ticker list, cursor-paged."""
        return await self._serve(request, "tickers", None, self._tickers_body)

    async def _tickers_body(self, request: Request, request_id: str) -> ReferenceBody:
        cursor = request.query_params.get("cursor")
        try:
            if cursor is not None:
                pairs, offset = decode_event_cursor(cursor)
            else:
                pairs = [(k, v) for k, v in request.query_params.multi_items() if k != "apiKey"]
                offset = 0
            records, next_offset = list_tickers(
                self._ticker_rows(), pairs, offset, self.state.today()
            )
        except EventQueryError as exc:
            raise BadRequest(str(exc)) from None
        next_url = _next_cursor_url(request, pairs, next_offset)
        return ReferenceBody(records, request_id, next_url)

    async def ticker_overview(self, request: Request) -> Response:
        """`GET /v3/reference/tickers/{ticker}` with optional `date`."""
        ticker = request.path_params["ticker"]
        return await self._serve(request, "ticker_details", ticker, self._details_body)

    async def _details_body(self, request: Request, request_id: str) -> ReferenceBody:
        raw = request.query_params.get("date")
        on = _parse_date(raw) if raw else self.state.today()
        record = ticker_details(self._ticker_rows(), request.path_params["ticker"], on)
        if record is None:
            raise NotFound("Ticker not found.")
        return ReferenceBody(record, request_id)

    async def ticker_events(self, request: Request) -> Response:
        """`GET /vX/reference/tickers/{id}/events` (`types=ticker_change`, the only type)."""
        identifier = request.path_params["id"]
        return await self._serve(request, "ticker_events", identifier, self._ticker_events_body)

    async def _ticker_events_body(self, request: Request, request_id: str) -> ReferenceBody:
        types = request.query_params.get("types")
        if types and set(types.split(",")) - {"ticker_change"}:
            raise BadRequest("Could not parse the query parameter: 'types'. Use ticker_change")
        record = ticker_events(self._ticker_rows(), request.path_params["id"], self.state.today())
        if record is None:
            raise NotFound("Ticker not found.")
        return ReferenceBody(record, request_id)

    async def not_found(self, request: Request) -> Response:
        """Any other GET path: 404 NOT_FOUND (counted under kind "other"; `/_sim/` not)."""
        request_id = uuid.uuid4().hex
        if request.url.path.startswith("/_sim/"):
            return _json(404, {"error": f"no control route {request.url.path}"}, request_id)
        arrival = time.time()
        response = _error(404, request_id, f"The simulator does not serve {request.url.path}")
        self.state.record(
            arrival=arrival,
            path=request.url.path,
            query="",
            kind="other",
            ticker=None,
            status=404,
            api_key_in_query="apiKey" in request.query_params,
            fault=None,
        )
        return response


# --- the control API ----------------------------------------------------------------------------


class _Control:
    """`/_sim/...` handlers: inspect and steer the state (no auth, never counted)."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @staticmethod
    def _ok(payload: Any, status: int = 200) -> Response:
        return Response(dumps(payload), status, media_type=JSON)

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"body is not JSON: {exc}") from None

    async def _run(self, action: Callable[[], Any]) -> Response:
        try:
            return self._ok(action())
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)

    async def health(self, request: Request) -> Response:
        """`GET /_sim/health`: liveness, and a reminder that the data is simulated."""
        return self._ok({"status": "OK", "simulated": True})

    async def stats(self, request: Request) -> Response:
        """`GET /_sim/stats`: counters and the request log (`?log=false` leaves the log out)."""
        include_log = request.query_params.get("log", "true").lower() not in ("false", "0")
        return self._ok(self.state.stats(include_log=include_log))

    async def reset(self, request: Request) -> Response:
        """`POST /_sim/reset` with optional `{"reset_config": bool, "config": {...}}`."""
        try:
            body = await self._body(request) or {}
            if not isinstance(body, dict) or set(body) - {"reset_config", "config"}:
                raise ConfigError('body must be {"reset_config": bool, "config": {...}}')
            changes = body.get("config") or {}
            if not isinstance(changes, dict):
                raise ConfigError("config must be an object")
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)
        reset_config = bool(body.get("reset_config", False))
        return await self._run(
            lambda: {"config": self.state.reset(reset_config, **changes).model_dump(mode="json")}
        )

    async def list_faults(self, request: Request) -> Response:
        """`GET /_sim/faults`: active rules with `id`, `fired`, `remaining`."""
        return self._ok(self.state.faults())

    async def add_faults(self, request: Request) -> Response:
        """`POST /_sim/faults` with one rule object or a list; answers `{"ids": [...]}`."""

        def add() -> dict[str, Any]:
            if not isinstance(body, dict | list):
                raise ConfigError("body must be a fault rule object or a list of them")
            ids = self.state.add_fault(body if isinstance(body, list) else [body])
            return {"ids": ids}

        try:
            body = await self._body(request)
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)
        return await self._run(add)

    async def clear_faults(self, request: Request) -> Response:
        """`DELETE /_sim/faults`: remove every rule."""
        self.state.clear_faults()
        return self._ok({"ids": []})

    async def remove_fault(self, request: Request) -> Response:
        """`DELETE /_sim/faults/{id}`: remove one rule (404 when unknown)."""
        try:
            rule_id = int(request.path_params["rule_id"])
        except ValueError:
            return self._ok({"error": "fault id must be an integer"}, 400)
        if not self.state.remove_fault(rule_id):
            return self._ok({"error": f"no fault {rule_id}"}, 404)
        return self._ok({"removed": rule_id})

    async def get_config(self, request: Request) -> Response:
        """`GET /_sim/config`: the config in force."""
        return self._ok(self.state.config.model_dump(mode="json"))

    async def set_config(self, request: Request) -> Response:
        """`POST /_sim/config` with a partial config object; answers the new config."""
        try:
            body = await self._body(request) or {}
            if not isinstance(body, dict):
                raise ConfigError("body must be an object of config fields")
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)
        return await self._run(lambda: self.state.configure(**body).model_dump(mode="json"))


def create_app(state: SimulatorState | None = None) -> Starlette:
    """The simulator app over `state` (a fresh default state when None).

    Builds the NYSE calendar tables up front so the first request is as fast as the others.
    """
    state = state if state is not None else SimulatorState()
    market.warm_up()
    _install_reset_log_filter()
    api = _Api(state)
    control = _Control(state)
    routes = [
        Route(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from_}/{to}", api.range_aggs
        ),
        Route("/v2/aggs/grouped/locale/us/market/stocks/{date}", api.grouped_stocks),
        Route("/v2/aggs/grouped/locale/global/market/crypto/{date}", api.grouped_crypto),
        *(Route(path, api.reference_events) for path in ENDPOINTS),
        Route("/v3/reference/tickers", api.tickers),
        Route("/v3/reference/tickers/{ticker}", api.ticker_overview),
        Route("/vX/reference/tickers/{id}/events", api.ticker_events),
        Route("/_sim/health", control.health),
        Route("/_sim/stats", control.stats),
        Route("/_sim/reset", control.reset, methods=["POST"]),
        Route("/_sim/faults", control.list_faults, methods=["GET"]),
        Route("/_sim/faults", control.add_faults, methods=["POST"]),
        Route("/_sim/faults", control.clear_faults, methods=["DELETE"]),
        Route("/_sim/faults/{rule_id}", control.remove_fault, methods=["DELETE"]),
        Route("/_sim/config", control.get_config, methods=["GET"]),
        Route("/_sim/config", control.set_config, methods=["POST"]),
        Route("/{path:path}", api.not_found),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Identify, state=state), Middleware(_SwitchableGZip, state=state)],
    )
    app.state.simulator = state
    return app
