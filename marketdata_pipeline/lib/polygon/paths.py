"""What an aggregates request's path says: the last day it covers (the page cache's age rule
reads it to tell history from the revision window)."""

from __future__ import annotations

import datetime as dt
import re

MS_PER_DAY = 86_400_000
# `/v2/aggs/ticker/{T}/range/1/day/{from}/{to}` (from/to: dates or ms timestamps, the latter in
# `next_url` pages) and `/v2/aggs/grouped/locale/{l}/market/{m}/{date}`.
_RANGE_PATH = re.compile(r"/range/\d+/\w+/([^/]+)/([^/?]+)$")
_GROUPED_PATH = re.compile(r"/grouped/locale/[^/]+/market/[^/]+/([^/?]+)$")


def _as_date(text: str) -> dt.date | None:
    """A path's date: YYYY-MM-DD or a Unix ms timestamp (UTC day); None when neither."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    if text.isdigit():
        return dt.date(1970, 1, 1) + dt.timedelta(days=int(text) // MS_PER_DAY)
    return None


def last_day_of(path: str) -> dt.date | None:
    """The last day an aggregates request covers, read from its path (None: unknown)."""
    if match := _RANGE_PATH.search(path):
        return _as_date(match.group(2))
    if match := _GROUPED_PATH.search(path):
        return _as_date(match.group(1))
    return None
