"""Errors raised by the Polygon client, each naming what was asked and what went wrong.

Messages carry the request (symbol or grouped day, date range), the HTTP status and the API's own
message, and never the API key: the key travels only in the `Authorization` header, and
`redact` scrubs it from any text we did not write ourselves as a last line of defence.
"""

from __future__ import annotations

import datetime as dt

from marketdata_pipeline.lib.errors import MarketdataError


class PolygonError(MarketdataError):
    """A request to the Polygon API failed for good (after any retries)."""

    def __init__(
        self,
        message: str,
        *,
        request: str = "",
        status_code: int | None = None,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.request = request
        self.status_code = status_code
        self.api_message = api_message


class PolygonAuthError(PolygonError):
    """401 (unknown or missing key) or 403 (the plan does not cover this data): never retried."""


class PolygonPlanError(PolygonAuthError):
    """403 NOT_AUTHORIZED: the key's plan does not serve the requested dates (never retried).

    Plans serve a limited history (the free tier about two years back) and never dates in the
    future. `window` is the inclusive (first, last) day of the refused request.
    """

    def __init__(
        self,
        message: str,
        *,
        window: tuple[dt.date, dt.date] | None = None,
        request: str = "",
        status_code: int | None = 403,
        api_message: str | None = None,
    ) -> None:
        super().__init__(message, request=request, status_code=status_code, api_message=api_message)
        self.window = window


def plan_refusal_message(
    what: str, window: tuple[dt.date, dt.date] | None, api_message: str
) -> str:
    """Plain words for a 403 that refuses a data timeframe, naming the refused window."""
    if window is None:
        span = ""
    elif window[0] == window[1]:
        span = f" (the day {window[0]})"
    else:
        span = f" (the days {window[0]} to {window[1]})"
    return (
        f"Polygon refused {what}: the API plan of this key does not include that data "
        f"timeframe{span}. Plans serve a limited history (the free tier about two years back) "
        "and never dates in the future. Set POLYGON_HISTORY_START to the first day the plan "
        "serves so older days are not requested, or upgrade the plan "
        f"(HTTP 403 NOT_AUTHORIZED: {api_message}; not retried)"
    )


class PolygonRequestError(PolygonError):
    """400/404 and other client errors: the request itself is wrong, so retrying cannot help."""


class PolygonUnavailableError(PolygonError):
    """429, 5xx, timeouts or connection errors persisted through every retry."""


class PolygonUnreachableError(PolygonUnavailableError):
    """Nothing listens at the API's base URL (connection refused): retrying for minutes cannot
    help, so the client gives up after a couple of quick attempts."""


class PolygonPayloadError(PolygonError):
    """The response body is not the JSON we expect (truncated, HTML, wrong shape, bad paging)."""


class TransientError(Exception):
    """Internal: an attempt failed in a way worth retrying. Never escapes the client.

    `refused`: the connection was refused (nothing listens), retried only briefly.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        refused: bool = False,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after
        self.refused = refused


def redact(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each non-empty secret in `text` with `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
