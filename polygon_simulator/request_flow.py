"""The path of every API request: latency -> auth -> rate limit -> first matching fault -> answer.

`RequestFlow.serve` runs a route's body producer inside that path and counts and logs the
request whatever the outcome; the route modules (routes_aggregates.py, routes_reference.py)
only build bodies. A fault either answers instead of the producer (a status, a body that is
not JSON) or spoils the page it built.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from polygon_simulator import faults as fault_bodies
from polygon_simulator.faults import FaultRule
from polygon_simulator.pages import GroupedBody, RangeBody, encode_cursor
from polygon_simulator.parsing import base_url, parse_limit, parse_sort
from polygon_simulator.ratelimit import retry_after_header
from polygon_simulator.reference_bodies import EventsBody, ReferenceBody
from polygon_simulator.responses import (
    JSON,
    BadRequest,
    NotAuthorized,
    NotFound,
    ResetResponse,
    error_response,
    json_response,
    response_headers,
)
from polygon_simulator.state import SimulatorState

logger = logging.getLogger(__name__)

# Builds the normal body of a request (may raise BadRequest); faults then edit or replace it.
Producer = Callable[
    [Request, str], Awaitable["RangeBody | GroupedBody | EventsBody | ReferenceBody"]
]


class RequestFlow:
    """What every API request goes through over one SimulatorState, whatever its route."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    async def serve(
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
            response = error_response(500, request_id, "Internal simulator error")
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
            return error_response(401, request_id, "API Key was not provided")
        if not secrets.compare_digest(token.encode(), self.state.config.api_key.encode()):
            return error_response(401, request_id, "Unknown API Key")
        return None

    def _check_rate(self, request_id: str) -> Response | None:
        wait = self.state.check_rate_limit()
        if wait is None:
            return None
        extra = {}
        if self.state.config.rate_limit_retry_after:
            extra["Retry-After"] = retry_after_header(wait)
        return error_response(429, request_id, fault_bodies.RATE_LIMIT_MESSAGE, **extra)

    async def _answer(
        self, request: Request, request_id: str, produce: Producer, fault: FaultRule | None
    ) -> Response:
        early = await self._fault_before_producing(fault, request_id)
        if early is not None:
            return early
        try:
            body = await produce(request, request_id)
        except BadRequest as exc:
            return error_response(400, request_id, str(exc))
        except NotAuthorized:
            return error_response(403, request_id, fault_bodies.NOT_AUTHORIZED_MESSAGE)
        except NotFound as exc:
            return error_response(404, request_id, str(exc))
        if fault is None or fault.kind == "delay":
            return Response(body.to_bytes(), 200, response_headers(request_id), media_type=JSON)
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
                response_headers(request_id),
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
            return ResetResponse(body.to_bytes(), request_id)
        if kind == "truncated_json":
            raw = body.to_bytes()
            return Response(
                raw[: len(raw) // 2], 200, response_headers(request_id), media_type=JSON
            )
        if kind == "next_url_loop":
            body.next_url = self._same_url(request, body)
            return Response(body.to_bytes(), 200, response_headers(request_id), media_type=JSON)
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
        return Response(text, 200, response_headers(request_id), media_type=JSON)

    @staticmethod
    def _status_fault(fault: FaultRule, request_id: str) -> Response:
        extra = {}
        if fault.retry_after is not None:
            seconds = fault.retry_after
            extra["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        if fault.body == "html":
            html = fault_bodies.nginx_html(fault.status_code)
            return Response(
                html, fault.status_code, response_headers(request_id, extra), media_type="text/html"
            )
        return error_response(fault.status_code, request_id, fault.message, **extra)

    @staticmethod
    def _same_url(request: Request, body: RangeBody | GroupedBody | EventsBody) -> str:
        # The loop points at exactly this request again: same path, same (or an equivalent)
        # cursor, never the API key.
        url = base_url(request) + request.url.path
        if isinstance(body, GroupedBody):
            return url
        if isinstance(body, EventsBody | ReferenceBody):
            return str(request.url.remove_query_params("apiKey"))
        cursor = request.query_params.get("cursor")
        if cursor is None:
            limit = parse_limit(request.query_params.get("limit"))
            sort = parse_sort(request.query_params.get("sort"))
            cursor = encode_cursor(limit, sort, body.adjusted)
        return f"{url}?cursor={cursor}"

    async def not_found(self, request: Request) -> Response:
        """Any other GET path: 404 NOT_FOUND (counted under kind "other"; `/_sim/` not)."""
        request_id = uuid.uuid4().hex
        if request.url.path.startswith("/_sim/"):
            return json_response(404, {"error": f"no control route {request.url.path}"}, request_id)
        arrival = time.time()
        response = error_response(
            404, request_id, f"The simulator does not serve {request.url.path}"
        )
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
