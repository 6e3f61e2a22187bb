"""The simulator's ticker reference: the rows of `/v3/reference/tickers` built from the world's
listings (`listings.py`), and the answers of the reference endpoints.

Reference endpoints (real paths and shapes):

- `GET /v3/reference/tickers`: `ticker` (and `.gt/.gte/.lt/.lte`), `type`, `market`, `exchange`,
  `cik`, `search`, `active` (default true), `date` (point in time), `sort` (`ticker`,
  `last_updated_utc`, `delisted_utc`, ...), `order`, `limit` (default 100, at most 1000),
  `cursor` (a `next_url` carries only the cursor). A stock row's `last_updated_utc` is when the
  world last changed it: its listing under that ticker (a new listing, or the new ticker of a
  rename), or its delisting (the old ticker of a rename too), at a time of that day hashed
  from the ticker, so an incremental reader sorting by it finds exactly what changed;
- `GET /v3/reference/tickers/{ticker}` with `date`: 404 when nobody held the ticker;
- `GET /vX/reference/tickers/{id}/events?types=ticker_change`: `id` a ticker (the entity that
  holds it today; 404 when nobody does) or a composite FIGI; events newest first.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from polygon_simulator import market
from polygon_simulator.calendar import NEW_YORK, UTC
from polygon_simulator.listings import (
    LAST_UPDATED,
    MARKETS,
    TICKERS_DEFAULT_LIMIT,
    TICKERS_MAX_LIMIT,
    SimListing,
    SimTicker,
    hashed,
    universe_listing,
    world,
)
from polygon_simulator.reference_query import EventQueryError, parse_query_day


def _updated_utc(ticker: str, day: dt.date) -> str:
    """`last_updated_utc` of a row the world changed on `day`: a time of that New York day
    (06:00 to 20:00, hashed from the ticker, so rows changed on one day seldom tie)."""
    seconds = 6 * 3600 + int(hashed(f"updated:{ticker}:{day}", "0123456789", 8)) % (14 * 3600)
    local = dt.datetime.combine(day, dt.time(), tzinfo=NEW_YORK) + dt.timedelta(seconds=seconds)
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utc_midnight_after(day: dt.date) -> str:
    """`delisted_utc`: the New York midnight after the last day, in UTC (the vendor's style)."""
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=NEW_YORK)
    return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class TickerRow:
    """One row of the ticker list: a (security, ticker interval), or a crypto pair."""

    ticker: str
    listing: SimListing | None  # None for crypto
    interval: SimTicker | None

    def exists_on(self, day: dt.date) -> bool:
        """True when the vendor already knew this ticker on `day`."""
        return self.interval is None or self.interval.first_day <= day

    def active_on(self, day: dt.date) -> bool:
        """True when the ticker traded under this security on `day`."""
        return self.interval is None or self.interval.holds(day)

    def record(self, on: dt.date, *, details: bool = False) -> dict[str, Any]:
        """The row in the real shape, as of `on`; `details` adds the ticker-details fields."""
        if self.listing is None:
            base = self.ticker.removeprefix(market.CRYPTO_PREFIX)
            return {
                "ticker": self.ticker,
                "name": f"{base[:-3]} - {base[-3:]}",
                "market": "crypto",
                "locale": "global",
                "active": True,
                "currency_symbol": base[-3:],
                "currency_name": base[-3:],
                "base_currency_symbol": base[:-3],
                "base_currency_name": base[:-3],
                "last_updated_utc": LAST_UPDATED,
            }
        listing, interval = self.listing, self.interval
        assert interval is not None
        active = self.active_on(on)
        record: dict[str, Any] = {
            "ticker": self.ticker,
            "name": listing.name,
            "market": "stocks",
            "locale": "us",
            "primary_exchange": listing.primary_exchange,
            "type": listing.type,
            "active": active,
            "currency_name": "usd",
            "cik": listing.cik,
            "composite_figi": listing.composite_figi,
            "share_class_figi": listing.share_class_figi,
        }
        if details:
            shares = 1_000_000 + int(hashed("shares:" + listing.series_key, "0123456789", 8))
            record.update(
                {
                    "description": f"{listing.name} (simulated reference data).",
                    "ticker_root": self.ticker.split(".")[0],
                    "list_date": listing.list_date.isoformat(),
                    "share_class_shares_outstanding": shares,
                    "weighted_shares_outstanding": shares,
                    "round_lot": 100,
                }
            )
        last = None if active else interval.last_day
        if not details:
            # The world last changed this row when it listed, or when it was delisted.
            changed = interval.first_day if last is None else last + dt.timedelta(days=1)
            record["last_updated_utc"] = _updated_utc(self.ticker, changed)
        if last is not None:
            record["delisted_utc"] = _utc_midnight_after(last)
        return {k: v for k, v in record.items() if v is not None}


@lru_cache(maxsize=8)
def ticker_rows(
    stock_universe: tuple[str, ...],
    crypto_universe: tuple[str, ...],
    listings: tuple[SimListing, ...],
) -> tuple[TickerRow, ...]:
    """Every row the ticker list can show, sorted by ticker then first day."""
    governed = world(listings).governed
    rows = [
        TickerRow(t, listing, listing.tickers[0])
        for t in stock_universe
        if t not in governed
        for listing in (universe_listing(t),)
    ]
    for listing in listings:
        rows.extend(TickerRow(i.ticker, listing, i) for i in listing.tickers)
    rows.extend(TickerRow(t, None, None) for t in crypto_universe)
    rows.sort(key=lambda r: (r.ticker, r.interval.first_day if r.interval else market.FIRST_DAY))
    return tuple(rows)


def _parse_active(value: str | None) -> bool:
    if value is None or value == "":
        return True
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise EventQueryError("Could not parse the query parameter: 'active'. Use true or false")


_TICKER_PARAMS = frozenset(
    {"ticker", "type", "market", "exchange", "cik", "cusip", "search", "active", "date"}
    | {"sort", "order", "limit"}
    | {f"ticker.{op}" for op in ("gt", "gte", "lt", "lte")}
)


def list_tickers(
    rows: tuple[TickerRow, ...], pairs: list[tuple[str, str]], offset: int, today: dt.date
) -> tuple[list[dict[str, Any]], int | None]:
    """The page of `/v3/reference/tickers` for a query (`pairs` without cursor), and the next
    page's offset."""
    params = dict(pairs)
    unknown = sorted(set(params) - _TICKER_PARAMS)
    if unknown:
        raise EventQueryError(f"Unknown query parameter: '{unknown[0]}'")
    raw_limit = params.get("limit") or str(TICKERS_DEFAULT_LIMIT)
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise EventQueryError(
            "Could not parse the query parameter: 'limit'. "
            f"Use an integer from 1 to {TICKERS_MAX_LIMIT}"
        )
    limit = min(int(raw_limit), TICKERS_MAX_LIMIT)
    on = parse_query_day(params["date"], "date") if params.get("date") else today
    active = _parse_active(params.get("active"))
    market_name = params.get("market")
    if market_name and market_name not in MARKETS:
        raise EventQueryError(
            f"Could not parse the query parameter: 'market'. Use one of {', '.join(MARKETS)}"
        )
    order = params.get("order") or "asc"
    if order not in ("asc", "desc"):
        raise EventQueryError("Could not parse the query parameter: 'order'. Use asc or desc")
    sort = params.get("sort") or "ticker"

    selected = []
    for row in rows:
        if not row.exists_on(on) or row.active_on(on) != active:
            continue
        record = row.record(on)
        if not _row_matches(record, params):
            continue
        selected.append(record)
    if sort not in _SORTS:
        raise EventQueryError(f"Could not parse the query parameter: 'sort' ({sort!r})")
    # Rows without the field last in either order; ties by ticker (the vendor's page marker).
    valued = [r for r in selected if r.get(sort) is not None]
    valued.sort(key=lambda r: (r[sort], r["ticker"], r.get("delisted_utc", "")))
    if order == "desc":
        valued.reverse()
    selected = valued + [r for r in selected if r.get(sort) is None]
    page = selected[offset : offset + limit]
    next_offset = offset + limit if offset + limit < len(selected) else None
    return page, next_offset


_SORTS = frozenset(
    {"ticker", "name", "market", "locale", "primary_exchange", "type", "cik"}
    | {"composite_figi", "share_class_figi", "last_updated_utc", "delisted_utc"}
)


def _row_matches(record: dict[str, Any], params: dict[str, str]) -> bool:
    ticker = record["ticker"]
    checks = {
        "ticker": lambda v: ticker == v,
        "ticker.gt": lambda v: ticker > v,
        "ticker.gte": lambda v: ticker >= v,
        "ticker.lt": lambda v: ticker < v,
        "ticker.lte": lambda v: ticker <= v,
        "type": lambda v: record.get("type") == v,
        "market": lambda v: record["market"] == v,
        "exchange": lambda v: record.get("primary_exchange") == v,
        "cik": lambda v: record.get("cik") == v,
        # The vendor never returns CUSIPs, and the simulator knows none.
        "cusip": lambda v: False,
        "search": lambda v: v.lower() in ticker.lower() or v.lower() in record["name"].lower(),
    }
    return all(check(params[key]) for key, check in checks.items() if params.get(key))


def ticker_details(rows: tuple[TickerRow, ...], ticker: str, on: dt.date) -> dict[str, Any] | None:
    """`/v3/reference/tickers/{ticker}` as of `on`: the holder that day, else the latest
    earlier holder (inactive); None when nobody had held it by then."""
    candidates = [r for r in rows if r.ticker == ticker and r.exists_on(on)]
    if not candidates:
        return None
    current = [r for r in candidates if r.active_on(on)]
    row = current[0] if current else candidates[-1]
    return row.record(on, details=True)


def ticker_events(
    rows: tuple[TickerRow, ...], identifier: str, today: dt.date
) -> dict[str, Any] | None:
    """`/vX/reference/tickers/{id}/events` results for a ticker held today or a composite
    FIGI; None when the id names no entity."""
    listing = None
    for row in rows:
        if row.listing is None:
            continue
        if row.listing.composite_figi == identifier or (
            row.ticker == identifier and row.active_on(today)
        ):
            listing = row.listing
            break
    if listing is None:
        return None
    events = [
        {
            "ticker_change": {"ticker": i.ticker},
            "type": "ticker_change",
            "date": (i.event_date or i.first_day).isoformat(),
        }
        for i in listing.tickers
        if i.first_day <= today
    ]
    events.reverse()  # newest first, as the vendor lists them
    out: dict[str, Any] = {"name": listing.name}
    if listing.composite_figi:
        out["composite_figi"] = listing.composite_figi
    if listing.cik:
        out["cik"] = listing.cik
    out["events"] = events
    return out
