"""The vendor's ticker reference: the ticker list, ticker details and ticker-change events.

- `/v3/reference/tickers` (1,000 rows a page, cursor paging): one pass for the listed tickers
  and one with `active=false` for the delisted ones. Types are filtered here rather than by
  the `type` parameter, so a rule of several types costs no more pages than one.
- `/v3/reference/tickers/{ticker}` with `date=`: one ticker as of a day (404: nobody had it).
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
    )


@dataclass
class TickerFetch:
    """The rows of a ticker-list load, the requests it took and the rows left out."""

    records: list[TickerRecord]
    requests: int
    rejected: list[str]


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
            for raw in page["results"]:
                record = parse_ticker(raw)
                if isinstance(record, str):
                    out.rejected.append(record)
                elif not wanted or record.type in wanted:
                    out.records.append(record)
    return out


def _parse_object(body: bytes, *, request: str) -> dict[str, Any]:
    """A reference answer whose `results` is one object (details, events)."""
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
    client: PolygonClient, ticker: str, day: dt.date | None = None
) -> dict[str, Any] | None:
    """One ticker's details as of `day` (today when None); None when nobody had it (404)."""
    params = {"date": day.isoformat()} if day is not None else {}
    path = f"{TICKERS_PATH}/{quote(ticker, safe='.')}"
    doc = _get_object(client, path, params, f"ticker details of {ticker}")
    return None if doc is None else doc["results"]
