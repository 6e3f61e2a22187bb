"""The aggregates routes: range bars of one ticker, and grouped daily of a whole market.

Stocks and crypto alike; bodies are built from (and cached as) pages, see pages.py.
"""

from __future__ import annotations

import datetime as dt

from starlette.requests import Request
from starlette.responses import Response

from polygon_simulator import market
from polygon_simulator.corporate_actions import executed_factors, factors_by_ticker
from polygon_simulator.pages import (
    GroupedBody,
    RangeBody,
    build_grouped_page,
    build_range_page,
    decode_cursor,
    encode_cursor,
)
from polygon_simulator.parsing import (
    base_url,
    parse_bool,
    parse_date,
    parse_limit,
    parse_sort,
    parse_time,
)
from polygon_simulator.request_flow import RequestFlow
from polygon_simulator.responses import BadRequest, NotAuthorized


class AggregateRoutes:
    """`/v2/aggs/...` handlers over one request flow."""

    def __init__(self, flow: RequestFlow) -> None:
        self.flow = flow
        self.state = flow.state
        self.cache = flow.state.body_cache

    async def range_aggs(self, request: Request) -> Response:
        """`GET /v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from}/{to}`."""
        ticker = request.path_params["ticker"]
        return await self.flow.serve(request, "range", ticker, self._range_body)

    async def _range_body(self, request: Request, request_id: str) -> RangeBody:
        params = request.path_params
        ticker = params["ticker"]
        if params["multiplier"] != "1" or params["timespan"] != "day":
            raise BadRequest(
                "The simulator serves daily bars only: use multiplier 1 and timespan day "
                f"(got {params['multiplier']}/{params['timespan']})"
            )
        crypto = market.is_crypto(ticker)
        start = parse_time(params["from_"], "from", crypto)
        end = parse_time(params["to"], "to", crypto)
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
            limit = parse_limit(decoded.get("limit"))
            sort = parse_sort(decoded.get("sort"))
            adjusted = parse_bool(decoded.get("adjusted"), "adjusted", True)
        else:
            limit = parse_limit(query.get("limit"))
            sort = parse_sort(query.get("sort"))
            adjusted = parse_bool(query.get("adjusted"), "adjusted", True)

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
                f"{base_url(request)}/v2/aggs/ticker/{ticker}/range/1/day/{first}/{last_seg}"
                f"?cursor={encode_cursor(limit, sort, adjusted)}"
            )
        return RangeBody(ticker, adjusted, page, request_id, next_url)

    async def grouped_stocks(self, request: Request) -> Response:
        """`GET /v2/aggs/grouped/locale/us/market/stocks/{date}`."""
        return await self.flow.serve(request, "grouped", None, self._grouped_stocks_body)

    async def grouped_crypto(self, request: Request) -> Response:
        """`GET /v2/aggs/grouped/locale/global/market/crypto/{date}`."""
        return await self.flow.serve(request, "grouped", None, self._grouped_crypto_body)

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
        day = parse_date(request.path_params["date"])
        self._check_plan(day, day)
        adjusted = parse_bool(request.query_params.get("adjusted"), "adjusted", True)
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
