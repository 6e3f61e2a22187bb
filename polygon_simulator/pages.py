"""Response bodies of the aggregates endpoints, in the real Polygon shapes.

Serialising thousands of bars dominates a request's cost, so the `results` array of a page is
cached as JSON text per (ticker, days, sort, limit, revision) (see body_cache.py) and spliced
into a small envelope that carries the per-request parts (`request_id`, `adjusted`,
`next_url`). Faults that edit a body use `as_dict()` instead, which is slower but only runs
when a fault fires.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np

from polygon_simulator import market
from polygon_simulator.body_cache import BodyCache
from polygon_simulator.corporate_actions import SplitFactor, apply_splits

RANGE_FIELDS = ("v", "vw", "o", "c", "h", "l", "t", "n")  # key order of the real range mocks
GROUPED_FIELDS = ("T", "v", "vw", "o", "c", "h", "l", "t", "n")  # ... and of the grouped mock
DEFAULT_LIMIT = 5000
MAX_LIMIT = 50_000
_PLACEHOLDER = "@@RESULTS@@"  # cannot occur in a ticker, so safe to splice on

# The cache moved to body_cache.py; its tests still import it from here.
__all__ = [
    "DEFAULT_LIMIT",
    "GROUPED_FIELDS",
    "MAX_LIMIT",
    "RANGE_FIELDS",
    "BodyCache",
    "GroupedBody",
    "GroupedPage",
    "RangeBody",
    "RangePage",
    "build_grouped_page",
    "build_range_page",
    "decode_cursor",
    "dumps",
    "encode_cursor",
]


def dumps(value: Any) -> str:
    """Compact JSON like the real API (no spaces)."""
    return json.dumps(value, separators=(",", ":"))


def _rows_json(columns: dict[str, np.ndarray], fields: tuple[str, ...]) -> bytes:
    """A JSON array of row objects, built with %-formatting (twice as fast as json.dumps).

    `%r` of a Python float or int is exactly what json.dumps writes for it; text columns are
    JSON-encoded first and inserted with `%s`.
    """
    lists = []
    parts = []
    for field in fields:
        values = columns[field].tolist()
        if columns[field].dtype == object:
            lists.append([json.dumps(v) for v in values])
            parts.append(f'"{field}":%s')
        else:
            lists.append(values)
            parts.append(f'"{field}":%r')
    template = "{" + ",".join(parts) + "}"
    rows = ",".join([template % row for row in zip(*lists, strict=True)])
    return ("[" + rows + "]").encode()


# --- range aggregates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RangePage:
    """One page of range bars: the `results` JSON (None when empty) and where the next starts."""

    results_json: bytes | None
    count: int
    next_ms: int | None  # t of the first bar of the next page (asc: later, desc: earlier)


def _written_volume(
    columns: dict[str, np.ndarray], crypto: bool, conventions: market.Conventions
) -> dict[str, np.ndarray]:
    """Stock volume as whole numbers (`4369`, as the real API writes it) unless switched off."""
    if crypto or not conventions.integer_stock_volume:
        return columns
    return {**columns, "v": columns["v"].astype(np.int64)}


def build_range_page(
    ticker: str,
    start: dt.date,
    end: dt.date,
    *,
    sort: str,
    limit: int,
    revision: int,
    revision_from: dt.date | None,
    conventions: market.Conventions = market.DEFAULT_CONVENTIONS,
    splits: tuple[SplitFactor, ...] = (),
    adjusted: bool = True,
    segments: tuple[tuple[int, int, market.TickerParams], ...] | None = None,
) -> RangePage:
    """Compute a page: the first `limit` bars of [start, end] in `sort` order.

    `splits` are the ticker's executed splits: the bars are then as traded (`adjusted=False`)
    or split-adjusted (see corporate_actions.apply_splits). `segments` (first day number, last
    day number, price series) restrict a listed ticker to the days its holders held it, each
    day priced from that day's holder (see listings.py).
    """
    days = market.bar_days(ticker, start, end)
    day_params = None
    if segments is not None:
        days, day_params = _held_days(days, segments)
    if sort == "desc":
        days = days[::-1]
        day_params = None if day_params is None else day_params[::-1]
    page_days, rest = days[:limit], days[limit:]
    next_ms = int(market.range_timestamps(ticker, rest[:1], conventions)[0]) if len(rest) else None
    if not len(page_days):
        return RangePage(None, 0, None)
    columns = market.bars_on_days(
        ticker,
        page_days,
        revision=revision,
        revision_from=revision_from,
        conventions=conventions,
        params=None if day_params is None else day_params[:limit],
    )
    if splits:
        columns = apply_splits(columns, [splits] * len(page_days), adjusted=adjusted)
    columns = _written_volume(columns, market.is_crypto(ticker), conventions)
    return RangePage(_rows_json(columns, RANGE_FIELDS), len(page_days), next_ms)


def _held_days(
    days: np.ndarray, segments: tuple[tuple[int, int, market.TickerParams], ...]
) -> tuple[np.ndarray, list[market.TickerParams]]:
    """The days of `days` inside a segment, and each one's price series (ascending)."""
    kept: list[np.ndarray] = []
    params: list[market.TickerParams] = []
    for first, last, series in segments:
        inside = days[(days >= first) & (days <= last)]
        kept.append(inside)
        params.extend([series] * len(inside))
    out = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    return out, params


def encode_cursor(limit: int, sort: str, adjusted: bool) -> str:
    """The opaque `cursor` of a next_url: urlsafe base64 of `limit=..&sort=..&adjusted=..`.

    The real cursor decodes to `limit=5000&sort=asc`; we add `adjusted` so it survives paging.
    """
    text = urlencode({"limit": limit, "sort": sort, "adjusted": "true" if adjusted else "false"})
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, str]:
    """Inverse of `encode_cursor`; raises ValueError for anything that is not such a cursor."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError("cursor is not base64") from exc
    pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
    params = dict(pairs)
    if not params or set(params) - {"limit", "sort", "adjusted"}:
        raise ValueError("cursor does not hold limit/sort/adjusted")
    return params


def _envelope(
    head: dict[str, Any],
    page: RangePage | GroupedPage,
    adjusted: bool,
    request_id: str,
    next_url: str | None,
) -> bytes:
    """`head` + resultsCount, adjusted, results, status, request_id, count, next_url as bytes.

    The cached `results` bytes are spliced in with one join instead of being re-serialised.
    """
    body = dict(head)
    body["resultsCount"] = page.count
    body["adjusted"] = adjusted
    if page.results_json is not None:
        body["results"] = _PLACEHOLDER
    body["status"] = "OK"
    body["request_id"] = request_id
    if page.results_json is not None:
        body["count"] = page.count  # the real empty answer has no `count` either
    if next_url is not None:
        body["next_url"] = next_url
    text = dumps(body).encode()
    if page.results_json is None:
        return text
    before, after = text.split(f'"{_PLACEHOLDER}"'.encode(), 1)
    return b"".join((before, page.results_json, after))


@dataclass
class RangeBody:
    """A range response body, built lazily as bytes (fast path) or as a dict (for faults)."""

    ticker: str
    adjusted: bool
    page: RangePage
    request_id: str
    next_url: str | None

    def to_bytes(self) -> bytes:
        """The body as the real API sends it; `results` and `count` are omitted when empty."""
        head = {"ticker": self.ticker, "queryCount": self.page.count}
        return _envelope(head, self.page, self.adjusted, self.request_id, self.next_url)

    def as_dict(self) -> dict[str, Any]:
        """The same body as a dict (keys in the same order)."""
        return json.loads(self.to_bytes())


# --- grouped daily ------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupedPage:
    """The `results` JSON of one grouped-daily response (None when the market was closed)."""

    results_json: bytes | None
    count: int


def build_grouped_page(
    tickers: tuple[str, ...],
    day: dt.date,
    *,
    revision: int,
    revision_from: dt.date | None,
    conventions: market.Conventions = market.DEFAULT_CONVENTIONS,
    splits: dict[str, tuple[SplitFactor, ...]] | None = None,
    adjusted: bool = True,
    params: tuple[market.TickerParams, ...] | None = None,
) -> GroupedPage:
    """All `tickers`' bars on `day` (the caller decides whether the market traded).

    `splits` maps tickers to their executed splits (see `build_range_page`); `params`
    (aligned to `tickers`) gives listed tickers their holder's price series.
    """
    if not tickers:
        return GroupedPage(None, 0)
    columns = market.grouped_bars(
        tickers,
        day,
        revision=revision,
        revision_from=revision_from,
        conventions=conventions,
        params=params,
    )
    if splits and any(t in splits for t in tickers):
        factors = [splits.get(t, ()) for t in tickers]
        columns = apply_splits(columns, factors, adjusted=adjusted)
    # A grouped page holds one market: stocks or crypto, never both.
    columns = _written_volume(columns, market.is_crypto(tickers[0]), conventions)
    return GroupedPage(_rows_json(columns, GROUPED_FIELDS), len(tickers))


@dataclass
class GroupedBody:
    """A grouped-daily response body (no top-level ticker, no pagination)."""

    adjusted: bool
    page: GroupedPage
    request_id: str
    next_url: str | None = None  # only ever set by the next_url_loop fault

    def to_bytes(self) -> bytes:
        """The body as the real API sends it; `results` and `count` are omitted when empty."""
        head = {"queryCount": self.page.count}
        return _envelope(head, self.page, self.adjusted, self.request_id, self.next_url)

    def as_dict(self) -> dict[str, Any]:
        """The same body as a dict (keys in the same order)."""
        return json.loads(self.to_bytes())
