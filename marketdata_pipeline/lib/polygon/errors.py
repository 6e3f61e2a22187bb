"""Errors raised by the Polygon client, each naming what was asked and what went wrong.

Messages carry the request (symbol or grouped day, date range), the HTTP status and the API's own
message, and never the API key: the key travels only in the `Authorization` header, and
`redact` scrubs it from any text we did not write ourselves as a last line of defence.
"""

from __future__ import annotations

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


class PolygonRequestError(PolygonError):
    """400/404 and other client errors: the request itself is wrong, so retrying cannot help."""


class PolygonUnavailableError(PolygonError):
    """429, 5xx, timeouts or connection errors persisted through every retry."""


class PolygonPayloadError(PolygonError):
    """The response body is not the JSON we expect (truncated, HTML, wrong shape, bad paging)."""


class TransientError(Exception):
    """Internal: an attempt failed in a way worth retrying. Never escapes the client."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status_code = status_code
        self.retry_after = retry_after


def redact(text: str, *secrets: str | None) -> str:
    """Replace every occurrence of each non-empty secret in `text` with `***`."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
