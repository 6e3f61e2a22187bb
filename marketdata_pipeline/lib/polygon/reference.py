"""The vendor's ticker reference: the ticker list and ticker-change events.

- `/v3/reference/tickers` (1,000 rows a page, cursor paging): one pass for the listed tickers
  and one with `active=false` for the delisted ones. Types are filtered here rather than by
  the `type` parameter, so a rule of several types costs no more pages than one. Newest first
  (`sort=last_updated_utc` or `delisted_utc`, `order=desc`), `fetch_recent` reads only the
  rows changed since a watermark; `fetch_ticker_range` reads a few pages from a ticker on.
- `/v3/reference/tickers/{ticker}` (`date=` for a ticker no longer current): one ticker's
  details, for a hand-typed ticker the ticker list was not loaded for (`fetch_ticker_details`);
- `/vX/reference/tickers/{id}/events?types=ticker_change`: a security's ticker changes, by
  composite FIGI (or by the ticker it holds today); 404 when the id names nobody.

Every request goes through `PolygonClient`, so it shares the retries, the rate budget and the
pagination guards of the candle requests.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError, PolygonRequestError

TICKERS_PATH = "/v3/reference/tickers"
TICKERS_PAGE_LIMIT = 1000
REFERENCE_KIND = "reference"


@dataclass(frozen=True)
class TickerRecord:
    """One row of the ticker list (the fields the identity needs)."""

    ticker: str
    name: str | None
    market: str
    type: str | None
    active: bool
    primary_exchange: str | None
    cik: str | None
    composite_figi: str | None
    share_class_figi: str | None
    delisted_utc: dt.datetime | None
    #: When the vendor last changed the row (list results only).
    last_updated_utc: dt.datetime | None = None
    #: The first day listed (ticker details only).
    list_date: dt.date | None = None


@dataclass(frozen=True)
class TickerEvent:
    """A ticker change: from `day` on, the security traded as `ticker` (as the vendor says)."""

    ticker: str
    day: dt.date


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def parse_ticker(record: Any) -> TickerRecord | str:
    """A ticker-list row, or why it was left out."""
    if not isinstance(record, dict):
        return f"ticker record is {type(record).__name__}, expected an object"
    ticker = _text(record.get("ticker"))
    if ticker is None:
        return f"ticker record without a ticker: {json.dumps(record)[:200]}"
    active = record.get("active")
    return TickerRecord(
        ticker=ticker,
        name=_text(record.get("name")),
        market=_text(record.get("market")) or "stocks",
        type=_text(record.get("type")),
        active=active if isinstance(active, bool) else True,
        primary_exchange=_text(record.get("primary_exchange")),
        cik=_text(record.get("cik")),
        composite_figi=_text(record.get("composite_figi")),
        share_class_figi=_text(record.get("share_class_figi")),
        delisted_utc=_instant(record.get("delisted_utc")),
        last_updated_utc=_instant(record.get("last_updated_utc")),
        list_date=_day(record.get("list_date")),
    )


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


@dataclass
class TickerFetch:
    """The rows of a ticker-list load, the requests it took and the rows left out."""

    records: list[TickerRecord]
    requests: int
    rejected: list[str]


def _page_records(page: dict[str, Any], out: TickerFetch) -> list[TickerRecord]:
    parsed = []
    for raw in page["results"]:
        record = parse_ticker(raw)
        if isinstance(record, str):
            out.rejected.append(record)
        else:
            parsed.append(record)
    return parsed


def fetch_tickers(
    client: PolygonClient,
    *,
    market: str = "stocks",
    types: Sequence[str] = (),
    include_delisted: bool = True,
    listed: bool = True,
    ticker: str | None = None,
    page_limit: int = TICKERS_PAGE_LIMIT,
) -> TickerFetch:
    """Every ticker the vendor lists for `market` (and, with `include_delisted`, every delisted
    one; `listed=False` leaves the listed ones out), keeping only `types` when given; `ticker`
    asks about one ticker only."""
    wanted = set(types)
    out = TickerFetch([], 0, [])
    passes = ((True,) if listed else ()) + ((False,) if include_delisted else ())
    for active in passes:
        params = {
            "market": market,
            "active": "true" if active else "false",
            "limit": str(page_limit),
            "sort": "ticker",
            "order": "asc",
        }
        what = f"{'listed' if active else 'delisted'} {market} tickers"
        if ticker is not None:
            params["ticker"] = ticker
            what += f" {ticker}"
        for page in client.json_pages(TICKERS_PATH, params, kind=REFERENCE_KIND, what=what):
            out.requests += 1
            records = _page_records(page, out)
            out.records.extend(r for r in records if not wanted or r.type in wanted)
    return out


#: The instants the ticker list can be read newest first by.
RECENT_SORTS = ("last_updated_utc", "delisted_utc")


@dataclass
class RecentFetch(TickerFetch):
    """The rows of a newest-first read, and the newest instant among them (None: no row had
    one)."""

    newest: dt.datetime | None = None


def fetch_recent(
    client: PolygonClient,
    *,
    market: str,
    active: bool,
    sort: str,
    since: dt.datetime | None,
    page_limit: int = TICKERS_PAGE_LIMIT,
) -> RecentFetch:
    """The rows of `market` (listed, or delisted with `active=False`) whose `sort` instant is
    `since` or later, read newest first: paging stops at the first row older than `since`, so
    a day's changes cost one page. A row without the instant is kept (it cannot be placed);
    `since` None reads every row."""
    if sort not in RECENT_SORTS:
        raise ValueError(f"sort {sort!r}: expected one of {', '.join(RECENT_SORTS)}")
    params = {
        "market": market,
        "active": "true" if active else "false",
        "sort": sort,
        "order": "desc",
        "limit": str(page_limit),
    }
    what = f"{'listed' if active else 'delisted'} {market} tickers by {sort}"
    out = RecentFetch([], 0, [])
    for page in client.json_pages(TICKERS_PATH, params, kind=REFERENCE_KIND, what=what):
        out.requests += 1
        older = False
        for record in _page_records(page, out):
            stamp: dt.datetime | None = getattr(record, sort)
            if stamp is not None and since is not None and stamp < since:
                older = True
                break
            if stamp is not None and (out.newest is None or stamp > out.newest):
                out.newest = stamp
            out.records.append(record)
        if older:
            break
    return out


@dataclass
class RangeFetch(TickerFetch):
    """A few pages of listed tickers in ticker order: the last ticker read, and whether the
    list ended there."""

    last: str | None = None
    exhausted: bool = False


def fetch_ticker_range(
    client: PolygonClient,
    *,
    market: str,
    after: str | None,
    pages: int,
    page_limit: int = TICKERS_PAGE_LIMIT,
) -> RangeFetch:
    """Up to `pages` pages of the listed tickers of `market` after `after` (from the first
    when None), in ticker order."""
    params = {
        "market": market,
        "active": "true",
        "sort": "ticker",
        "order": "asc",
        "limit": str(page_limit),
    }
    if after is not None:
        params["ticker.gt"] = after
    out = RangeFetch([], 0, [])
    if pages <= 0:
        return out
    what = f"listed {market} tickers after {after or 'the first'}"
    for page in client.json_pages(TICKERS_PATH, params, kind=REFERENCE_KIND, what=what):
        out.requests += 1
        records = _page_records(page, out)
        out.records.extend(records)
        raw_last = [r.get("ticker") for r in page["results"] if isinstance(r, dict)]
        if raw_last and isinstance(raw_last[-1], str):
            out.last = raw_last[-1]
        out.exhausted = not page.get("next_url")
        if out.requests >= pages:
            break
    return out


def _parse_object(body: bytes, *, request: str) -> dict[str, Any]:
    """A reference answer whose `results` is one object (the events)."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolygonPayloadError(
            f"Polygon response for {request} is not valid JSON ({exc})", request=request
        ) from None
    if not isinstance(doc, dict) or doc.get("status") != "OK":
        raise PolygonPayloadError(
            f"Polygon response for {request} is not an OK object", request=request
        )
    if not isinstance(doc.get("results"), dict):
        raise PolygonPayloadError(
            f"Polygon response for {request} has no 'results' object", request=request
        )
    return doc


def _get_object(client: PolygonClient, path: str, params: dict[str, str], what: str):
    try:
        return client.get_page(path, params, kind=REFERENCE_KIND, what=what, parse=_parse_object)
    except PolygonRequestError as exc:
        if exc.status_code == 404:
            return None
        raise


def fetch_ticker_events(client: PolygonClient, identifier: str) -> list[TickerEvent] | None:
    """A security's ticker changes, oldest first, by composite FIGI or current ticker; None
    when the vendor knows no such entity (404)."""
    path = f"/vX/reference/tickers/{quote(identifier, safe='')}/events"
    doc = _get_object(client, path, {"types": "ticker_change"}, f"ticker events of {identifier}")
    if doc is None:
        return None
    events = []
    for event in doc["results"].get("events") or []:
        if not isinstance(event, dict) or event.get("type") != "ticker_change":
            continue
        ticker = _text((event.get("ticker_change") or {}).get("ticker"))
        try:
            day = dt.date.fromisoformat(str(event.get("date")))
        except ValueError:
            continue
        if ticker is not None:
            events.append(TickerEvent(ticker, day))
    events.sort(key=lambda e: e.day)
    return events


def fetch_ticker_details(
    client: PolygonClient, ticker: str, on: dt.date | None = None
) -> TickerRecord | None:
    """One ticker's details (as of `on`, else today), or None when the vendor knows nobody
    holding it then (404)."""
    path = f"{TICKERS_PATH}/{quote(ticker, safe='')}"
    params = {"date": on.isoformat()} if on else {}
    what = f"ticker details of {ticker}" + (f" on {on}" if on else "")
    doc = _get_object(client, path, params, what)
    if doc is None:
        return None
    record = parse_ticker(doc["results"])
    if isinstance(record, str):
        raise PolygonPayloadError(f"Polygon response for {what}: {record}", request=what)
    return record
