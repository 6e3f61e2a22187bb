"""The reference routes: splits and dividends, the ticker list, one ticker, its events.

What they list comes from corporate_actions.py and listings.py; this module maps the requests
onto them and their errors onto the vendor's 400 and 404 answers.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from polygon_simulator import market
from polygon_simulator.event_endpoints import ENDPOINTS, list_events
from polygon_simulator.parsing import next_cursor_url, parse_date
from polygon_simulator.reference_bodies import EventsBody, ReferenceBody
from polygon_simulator.reference_query import EventQueryError, decode_event_cursor
from polygon_simulator.request_flow import RequestFlow
from polygon_simulator.responses import BadRequest, NotFound
from polygon_simulator.ticker_reference import (
    TickerRow,
    list_tickers,
    ticker_details,
    ticker_events,
    ticker_rows,
)


class ReferenceRoutes:
    """`/stocks/v1/...`, `/v3/reference/...` and `/vX/reference/...` handlers over one flow."""

    def __init__(self, flow: RequestFlow) -> None:
        self.flow = flow
        self.state = flow.state

    async def reference_events(self, request: Request) -> Response:
        """`GET /stocks/v1/{splits,dividends}` and `/v3/reference/{splits,dividends}`."""
        kind = ENDPOINTS[request.url.path].kind
        return await self.flow.serve(request, kind, None, self._events_body)

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
        next_url = next_cursor_url(request, pairs, next_offset)
        return EventsBody(records, request_id, next_url)

    def _ticker_rows(self) -> tuple[TickerRow, ...]:
        config = self.state.config
        crypto = market.crypto_universe(config.crypto_universe_size)
        crypto = crypto + tuple(t for t in config.extra_crypto_tickers if t not in set(crypto))
        stocks = self.state.stock_tickers()
        return ticker_rows(stocks, crypto, config.listings)

    async def tickers(self, request: Request) -> Response:
        """`GET /v3/reference/tickers`: the ticker list, cursor-paged."""
        return await self.flow.serve(request, "tickers", None, self._tickers_body)

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
        next_url = next_cursor_url(request, pairs, next_offset)
        return ReferenceBody(records, request_id, next_url)

    async def ticker_overview(self, request: Request) -> Response:
        """`GET /v3/reference/tickers/{ticker}` with optional `date`."""
        ticker = request.path_params["ticker"]
        return await self.flow.serve(request, "ticker_details", ticker, self._details_body)

    async def _details_body(self, request: Request, request_id: str) -> ReferenceBody:
        raw = request.query_params.get("date")
        on = parse_date(raw) if raw else self.state.today()
        record = ticker_details(self._ticker_rows(), request.path_params["ticker"], on)
        if record is None:
            raise NotFound("Ticker not found.")
        return ReferenceBody(record, request_id)

    async def ticker_events(self, request: Request) -> Response:
        """`GET /vX/reference/tickers/{id}/events` (`types=ticker_change`, the only type)."""
        identifier = request.path_params["id"]
        return await self.flow.serve(request, "ticker_events", identifier, self._ticker_events_body)

    async def _ticker_events_body(self, request: Request, request_id: str) -> ReferenceBody:
        types = request.query_params.get("types")
        if types and set(types.split(",")) - {"ticker_change"}:
            raise BadRequest("Could not parse the query parameter: 'types'. Use ticker_change")
        record = ticker_events(self._ticker_rows(), request.path_params["id"], self.state.today())
        if record is None:
            raise NotFound("Ticker not found.")
        return ReferenceBody(record, request_id)
