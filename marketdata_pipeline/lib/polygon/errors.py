"""Errors raised by the Polygon client, each naming what was asked and what went wrong.

Messages carry the request (symbol or grouped day, date range), the HTTP status and the API's own
message, and never the API key: the key travels only in the `Authorization` header, and
`redact` scrubs it from any text we did not write ourselves as a last line of defence.
`error_for_answer` and `error_for_transport` say what a failed attempt means: worth retrying
(`TransientError`) or final.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

import httpx

from marketdata_pipeline.lib.errors import MarketdataError

RETRYABLE_STATUS = frozenset({413, 429, 499, 500, 502, 503, 504})


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


_HTML_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE)


def api_message(response: httpx.Response) -> str:
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


def retry_after_seconds(response: httpx.Response) -> float | None:
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


def error_for_answer(
    response: httpx.Response, what: str, window: tuple[dt.date, dt.date] | None
) -> Exception:
    """What a non-200 answer to `what` means: a `TransientError` worth retrying, or the final
    `PolygonError` (plan, key, or the request itself), with the API's own message."""
    status = response.status_code
    message = api_message(response)
    if status in RETRYABLE_STATUS:
        return TransientError(
            f"{what}: HTTP {status} {message}",
            status_code=status,
            retry_after=retry_after_seconds(response),
        )
    # "Your plan doesn't include this data timeframe": dates outside the plan's window.
    # Other 403s ("not entitled to this data") concern the product, not the dates.
    if status == 403 and "timeframe" in message.lower():
        return PolygonPlanError(
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
        return PolygonAuthError(
            f"Polygon refused {what}: HTTP {status} {message} ({hint}; not retried)",
            request=what,
            status_code=status,
            api_message=message,
        )
    return PolygonRequestError(
        f"Polygon rejected {what}: HTTP {status} {message} (not retried)",
        request=what,
        status_code=status,
        api_message=message,
    )


def _connection_refused(exc: BaseException) -> bool:
    """Whether a transport error is a refused connection (nothing listens at the address)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "connection refused" in str(exc).lower()


def error_for_transport(exc: httpx.HTTPError, what: str) -> tuple[str, TransientError]:
    """A failure before any answer (timeout, refused or reset connection, a body cut off or
    garbled on the way): the outcome it is counted as, and the `TransientError` to retry."""
    name = exc.__class__.__name__
    if isinstance(exc, httpx.TimeoutException):
        return "timeout", TransientError(f"{what}: timed out ({name})")
    if isinstance(exc, httpx.DecodingError):
        # A gzip body cut off or garbled on the way: as transient as a truncated body.
        return "decoding-error", TransientError(f"{what}: undecodable body ({name})")
    if isinstance(exc, httpx.ConnectError) and _connection_refused(exc):
        return "connection-refused", TransientError(
            f"{what}: connection refused ({name})", refused=True
        )
    # Connection reset, incomplete body: the server or network hiccuped.
    return "connection-error", TransientError(f"{what}: connection failed ({name})")
