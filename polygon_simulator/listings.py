"""Listed securities of the simulator: who held which ticker when, and the reference endpoints.

By default every ticker of the universe is its own company, listed for the whole simulated
history. Tests add *listings* (`SimulatorConfig.listings`, or `POST /_sim/config` with
`{"listings": [...]}`) to give the world the vendor's awkward facts:

- a rename: one company, one price series, trading as `FB` and then as `META`;
- a reused ticker: an earlier, unrelated owner of `META` with its own (~$12) price series;
- a delisting: the last interval has a last day; bars stop there, the ticker list moves the
  security to `active=false` with `delisted_utc`;
- an inactive ticker without a FIGI;
- an event the events endpoint dates a few days off the day bars really switched (`event_date`).

`identity_world()` builds those listings, each switchable. A ticker named by any listing trades
only on the days a listing holds it, with the prices of the holder's series: the range and
grouped endpoints, the ticker list, ticker details and ticker events all agree.

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
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polygon_simulator import market
from polygon_simulator.calendar import NEW_YORK, UTC
from polygon_simulator.corporate_actions import EventQueryError

TICKERS_DEFAULT_LIMIT = 100
TICKERS_MAX_LIMIT = 1000
# ETFs among the demo names (everything else of the universe is a common stock).
_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})
_MARKETS = ("stocks", "crypto", "fx", "otc", "indices")
_LAST_UPDATED = "2025-01-02T00:00:00Z"


class SimTicker(BaseModel):
    """One interval during which a listed security traded under `ticker` (both days inclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticker: str
    first_day: dt.date
    last_day: dt.date | None = None  # None: still trades under it
    # The date the events endpoint reports for the change to this ticker (default first_day):
    # the vendor's event dates can be days off the day the bars switched.
    event_date: dt.date | None = None

    @field_validator("ticker")
    @classmethod
    def _stock(cls, value: str) -> str:
        if market.is_crypto(value) or not market.is_valid_ticker(value):
            raise ValueError(f"listings are for stock tickers only, got {value!r}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> SimTicker:
        if self.last_day is not None and self.last_day < self.first_day:
            raise ValueError(f"{self.ticker}: last_day {self.last_day} before {self.first_day}")
        return self

    def holds(self, day: dt.date) -> bool:
        """True when the interval covers `day`."""
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)


class SimListing(BaseModel):
    """A listed security: its reference fields, its ticker intervals and its price level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str = "CS"
    primary_exchange: str = "XNYS"
    cik: str | None = None
    composite_figi: str | None = None
    share_class_figi: str | None = None
    # The level its synthetic prices move around (None: hashed from its series key).
    base_price: float | None = Field(default=None, gt=0)
    tickers: tuple[SimTicker, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _intervals(self) -> SimListing:
        for before, after in zip(self.tickers, self.tickers[1:], strict=False):
            if before.last_day is None or after.first_day <= before.last_day:
                raise ValueError(
                    f"{self.name}: ticker intervals must follow each other "
                    f"({before.ticker} then {after.ticker})"
                )
        return self

    @property
    def series_key(self) -> str:
        """What its prices hash from: one series across all its tickers."""
        return "listing:" + (self.composite_figi or self.name)

    @property
    def list_date(self) -> dt.date:
        """Its first trading day."""
        return self.tickers[0].first_day

    @property
    def last_day(self) -> dt.date | None:
        """Its last trading day (None while it trades)."""
        return self.tickers[-1].last_day

    def params(self) -> market.TickerParams:
        """The generator constants of its price series."""
        return market.ticker_params(self.series_key, self.base_price)


def validate_listings(listings: tuple[SimListing, ...]) -> tuple[SimListing, ...]:
    """Refuse two listings holding one ticker on one day (the vendor's bars could not be told
    apart), or two listings with one composite FIGI."""
    by_ticker: dict[str, list[tuple[SimTicker, SimListing]]] = {}
    figis: dict[str, str] = {}
    for listing in listings:
        if listing.composite_figi:
            other = figis.setdefault(listing.composite_figi, listing.name)
            if other != listing.name:
                raise ValueError(f"{other} and {listing.name} share {listing.composite_figi}")
        for interval in listing.tickers:
            for seen, owner in by_ticker.get(interval.ticker, []):
                if _overlap(seen, interval):
                    raise ValueError(
                        f"{owner.name} and {listing.name} both hold {interval.ticker} on a day"
                    )
            by_ticker.setdefault(interval.ticker, []).append((interval, listing))
    return listings


def _overlap(a: SimTicker, b: SimTicker) -> bool:
    far = dt.date.max
    return a.first_day <= (b.last_day or far) and b.first_day <= (a.last_day or far)


def identity_world(
    *,
    rename: bool = True,
    reused_ticker: bool = True,
    delisting: bool = True,
    no_figi: bool = True,
    event_skew_days: int = 2,
    rename_on: dt.date = dt.date(2022, 6, 9),
    reused_until: dt.date = dt.date(2021, 12, 31),
    delisted_after: dt.date = dt.date(2023, 3, 9),
) -> tuple[SimListing, ...]:
    """The listings that give the world its identity problems, each switchable.

    - `rename`: Meta Platforms (BBG000MM2P62) trades as FB up to the day before `rename_on`
      (a session), as META from it; `event_skew_days` dates the events endpoint's META change
      that many days late (the vendor's client mock says 2022-06-11);
    - `reused_ticker`: an earlier owner of META (an ETF around $12) holds it up to
      `reused_until`, then trades as METV;
    - `delisting`: SVB Financial (SIVB) trades up to `delisted_after` and is delisted;
    - `no_figi`: an inactive ticker without any FIGI (ZZQX, 2019-03-01 .. 2021-06-30).

    The real dates are the defaults; tests of a store that starts later move them.
    """
    before_rename = rename_on - dt.timedelta(days=1)
    after_reuse = reused_until + dt.timedelta(days=1)
    out: list[SimListing] = []
    if rename:
        out.append(
            SimListing(
                name="Meta Platforms, Inc. Class A Common Stock",
                primary_exchange="XNAS",
                cik="0001326801",
                composite_figi="BBG000MM2P62",
                share_class_figi="BBG001SQCQC9",
                base_price=320.0,
                tickers=(
                    SimTicker(ticker="FB", first_day=dt.date(2012, 5, 18), last_day=before_rename),
                    SimTicker(
                        ticker="META",
                        first_day=rename_on,
                        event_date=rename_on + dt.timedelta(days=event_skew_days),
                    ),
                ),
            )
        )
    if reused_ticker:
        out.append(
            SimListing(
                name="Roundhill Ball Metaverse ETF",
                type="ETF",
                primary_exchange="ARCX",
                cik="0001722388",
                composite_figi="BBG00ZQFXB42",
                share_class_figi="BBG00ZQFXC31",
                base_price=12.0,
                tickers=(
                    SimTicker(ticker="META", first_day=dt.date(2010, 1, 4), last_day=reused_until),
                    SimTicker(ticker="METV", first_day=after_reuse),
                ),
            )
        )
    if delisting:
        out.append(
            SimListing(
                name="SVB Financial Group",
                primary_exchange="XNAS",
                cik="0000719739",
                composite_figi="BBG000BT0CM2",
                share_class_figi="BBG001S5RN05",
                base_price=280.0,
                tickers=(
                    SimTicker(
                        ticker="SIVB", first_day=dt.date(1990, 1, 2), last_day=delisted_after
                    ),
                ),
            )
        )
    if no_figi:
        out.append(
            SimListing(
                name="Zeta Quixote Holdings",
                cik="0001799999",
                tickers=(
                    SimTicker(
                        ticker="ZZQX", first_day=dt.date(2019, 3, 1), last_day=dt.date(2021, 6, 30)
                    ),
                ),
            )
        )
    return tuple(out)


# --- the world: who trades what, when ----------------------------------------------------------


@dataclass(frozen=True)
class Holding:
    """One (listing, ticker interval) pair, with the interval as day numbers."""

    listing: SimListing
    interval: SimTicker
    first: int
    last: int  # inclusive; market.LAST_DAY's number when open

    def holds(self, number: int) -> bool:
        """True when day number `number` is in the interval."""
        return self.first <= number <= self.last


class World:
    """The listings of a config, indexed for the bar and reference endpoints."""

    def __init__(self, listings: tuple[SimListing, ...]) -> None:
        self.listings = listings
        open_end = market.day_number(market.LAST_DAY)
        self.holdings: dict[str, list[Holding]] = {}
        for listing in listings:
            for interval in listing.tickers:
                last = (
                    open_end if interval.last_day is None else market.day_number(interval.last_day)
                )
                holding = Holding(listing, interval, market.day_number(interval.first_day), last)
                self.holdings.setdefault(interval.ticker, []).append(holding)
        for held in self.holdings.values():
            held.sort(key=lambda h: h.first)
        self.governed = frozenset(self.holdings)

    def holder(self, ticker: str, day: dt.date) -> Holding | None:
        """The holding of `ticker` on `day`, if a listing holds it then."""
        number = market.day_number(day)
        for holding in self.holdings.get(ticker, ()):
            if holding.holds(number):
                return holding
        return None

    def segments(self, ticker: str) -> tuple[tuple[int, int, market.TickerParams], ...]:
        """(first, last, params) of each interval of a governed ticker, by first day."""
        return tuple((h.first, h.last, h.listing.params()) for h in self.holdings.get(ticker, ()))

    def grouped_extras(self, day: dt.date) -> list[tuple[str, market.TickerParams]]:
        """The governed tickers that trade on `day`, with their holders' params."""
        out = []
        for ticker in sorted(self.holdings):
            holding = self.holder(ticker, day)
            if holding is not None:
                out.append((ticker, holding.listing.params()))
        return out


@lru_cache(maxsize=8)
def world(listings: tuple[SimListing, ...]) -> World:
    """The (cached) world of a listings tuple."""
    return World(listings)


# --- reference rows -----------------------------------------------------------------------------


def _hashed(text: str, alphabet: str, length: int) -> str:
    digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=16).digest(), "little")
    out = []
    for _ in range(length):
        digest, r = divmod(digest, len(alphabet))
        out.append(alphabet[r])
    return "".join(out)


_FIGI_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZ"  # FIGIs have no vowels


def universe_listing(ticker: str) -> SimListing:
    """The implicit listing of a plain universe ticker: one company, the whole history."""
    etf = ticker in _ETFS
    return SimListing(
        name=f"{ticker} {'Simulated ETF Trust' if etf else 'Simulated Inc.'}",
        type="ETF" if etf else "CS",
        primary_exchange="ARCX" if etf else "XNAS",
        cik="000" + _hashed("cik:" + ticker, "0123456789", 7),
        composite_figi="BBG" + _hashed("figi:" + ticker, _FIGI_ALPHABET, 9),
        share_class_figi="BBG" + _hashed("share:" + ticker, _FIGI_ALPHABET, 9),
        tickers=(SimTicker(ticker=ticker, first_day=market.FIRST_DAY),),
    )


def _updated_utc(ticker: str, day: dt.date) -> str:
    """`last_updated_utc` of a row the world changed on `day`: a time of that New York day
    (06:00 to 20:00, hashed from the ticker, so rows changed on one day seldom tie)."""
    seconds = 6 * 3600 + int(_hashed(f"updated:{ticker}:{day}", "0123456789", 8)) % (14 * 3600)
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
                "last_updated_utc": _LAST_UPDATED,
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
            shares = 1_000_000 + int(_hashed("shares:" + listing.series_key, "0123456789", 8))
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


def _parse_day(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EventQueryError(
            f"Could not parse the query parameter: '{name}'. Value must be formatted 'yyyy-mm-dd'"
        ) from None


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
    on = _parse_day(params["date"], "date") if params.get("date") else today
    active = _parse_active(params.get("active"))
    market_name = params.get("market")
    if market_name and market_name not in _MARKETS:
        raise EventQueryError(
            f"Could not parse the query parameter: 'market'. Use one of {', '.join(_MARKETS)}"
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
