"""The query plumbing the reference endpoints share: their 400 error and their cursors.

Splits, dividends and the ticker list page the same way: a `next_url` carries only an opaque
cursor that holds the whole query plus the next offset.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from urllib.parse import parse_qsl, urlencode


class EventQueryError(ValueError):
    """A query parameter the real API would reject with 400; the message is the error text."""


def encode_event_cursor(params: list[tuple[str, str]], offset: int) -> str:
    """The opaque cursor of a reference next_url: the whole query plus the next offset."""
    text = urlencode([*params, ("page_marker", str(offset))])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_event_cursor(cursor: str) -> tuple[list[tuple[str, str]], int]:
    """Inverse of `encode_event_cursor`; raises EventQueryError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
        offset = int(dict(pairs)["page_marker"])
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError):
        raise EventQueryError("Failed to parse query parameters: invalid cursor") from None
    return [(k, v) for k, v in pairs if k != "page_marker"], offset


def parse_query_day(value: str, name: str) -> dt.date:
    """A `yyyy-mm-dd` query parameter, or the vendor's 400 naming `name`."""
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EventQueryError(
            f"Could not parse the query parameter: '{name}'. Value must be formatted 'yyyy-mm-dd'"
        ) from None
