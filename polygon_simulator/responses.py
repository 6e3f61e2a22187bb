"""How the simulator's API answers: JSON responses, vendor-shaped errors, a mid-body reset.

`BadRequest`, `NotAuthorized` and `NotFound` are what a body producer raises for the 400, 403
and 404 answers the real API gives; `ResetResponse` is the `reset` fault's half-sent body.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from polygon_simulator import faults as fault_bodies
from polygon_simulator.pages import dumps

JSON = "application/json"


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


def install_reset_log_filter() -> None:
    """Add the `_DropSimulatedResets` filter to uvicorn's error logger (once)."""
    uvicorn_error = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropSimulatedResets) for f in uvicorn_error.filters):
        uvicorn_error.addFilter(_DropSimulatedResets())


class BadRequest(Exception):
    """A request parameter the real API would reject with 400; the message is the error text."""


class NotAuthorized(Exception):
    """Dates the plan does not serve: the real API answers 403 NOT_AUTHORIZED."""


class NotFound(Exception):
    """A reference id nobody has: the real API answers 404 NOT_FOUND with this message."""


def response_headers(request_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """`X-Request-Id` plus any `extra` headers (e.g. `Retry-After`)."""
    headers = {"X-Request-Id": request_id}
    if extra:
        headers.update(extra)
    return headers


def json_response(
    status: int, payload: Any, request_id: str, extra: dict[str, str] | None = None
) -> Response:
    """`payload` as compact JSON with the request id header."""
    return Response(dumps(payload), status, response_headers(request_id, extra), media_type=JSON)


def error_response(
    status: int, request_id: str, message: str | None = None, **extra: str
) -> Response:
    """The vendor's error body for `status` (see faults.error_payload), `extra` as headers."""
    payload = fault_bodies.error_payload(status, request_id, message)
    return json_response(status, payload, request_id, extra or None)


class ResetResponse(Response):
    """Sends the head and half the body, then raises so the server drops the connection."""

    def __init__(self, body: bytes, request_id: str) -> None:
        super().__init__(body, 200, response_headers(request_id), media_type=JSON)

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
