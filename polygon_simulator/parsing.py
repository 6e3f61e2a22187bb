"""Query and path parameters of the API routes, parsed and rejected as the real API does.

Every parser raises `BadRequest` with the vendor's error text; `next_cursor_url` and
`base_url` build the absolute `next_url`s of paged answers from the request's own base URL.
"""

from __future__ import annotations

import datetime as dt
import re

from starlette.requests import Request

from polygon_simulator.calendar import NEW_YORK, UTC
from polygon_simulator.pages import DEFAULT_LIMIT, MAX_LIMIT
from polygon_simulator.reference_query import encode_event_cursor
from polygon_simulator.responses import BadRequest

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MS_RE = re.compile(r"^\d{1,15}$")


def parse_bool(value: str | None, name: str, default: bool) -> bool:
    """`true`/`1`/`false`/`0` (any case) of parameter `name`; `default` when absent."""
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequest(f"Could not parse the query parameter: '{name}'. Use true or false")


def parse_sort(value: str | None) -> str:
    """The aggregates' `sort`: `asc` (the default) or `desc`."""
    if value is None or value == "":
        return "asc"
    if value not in ("asc", "desc"):
        raise BadRequest("Could not parse the query parameter: 'sort'. Use asc or desc")
    return value


def parse_limit(value: str | None) -> int:
    """The aggregates' `limit`: DEFAULT_LIMIT when absent, at most MAX_LIMIT."""
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


def parse_time(value: str, name: str, crypto: bool) -> dt.date:
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


def parse_date(value: str) -> dt.date:
    """A `YYYY-MM-DD` `date` parameter (grouped daily, ticker overview)."""
    try:
        if _DATE_RE.match(value):
            return dt.date.fromisoformat(value)
    except ValueError:
        pass
    raise BadRequest("Could not parse the time parameter: 'date'. Use YYYY-MM-DD")


def next_cursor_url(
    request: Request, pairs: list[tuple[str, str]], next_offset: int | None
) -> str | None:
    """The `next_url` of a cursor-paged reference answer (None on its last page): the same
    path with only a cursor, which holds the query, as the vendor's are."""
    if next_offset is None:
        return None
    return f"{base_url(request)}{request.url.path}?cursor={encode_event_cursor(pairs, next_offset)}"


def base_url(request: Request) -> str:
    """The request's own base URL without a trailing slash (next_urls are absolute)."""
    return str(request.base_url).rstrip("/")
