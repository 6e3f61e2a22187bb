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

The reference endpoints answer from these listings: `ticker_reference.py`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polygon_simulator import market

TICKERS_DEFAULT_LIMIT = 100
TICKERS_MAX_LIMIT = 1000
# ETFs among the demo names (everything else of the universe is a common stock).
_ETFS = frozenset({"SPY", "QQQ", "IWM", "DIA"})
MARKETS = ("stocks", "crypto", "fx", "otc", "indices")
LAST_UPDATED = "2025-01-02T00:00:00Z"


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


def hashed(text: str, alphabet: str, length: int) -> str:
    """`length` characters of `alphabet` derived from `text` (stable across runs)."""
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
        cik="000" + hashed("cik:" + ticker, "0123456789", 7),
        composite_figi="BBG" + hashed("figi:" + ticker, _FIGI_ALPHABET, 9),
        share_class_figi="BBG" + hashed("share:" + ticker, _FIGI_ALPHABET, 9),
        tickers=(SimTicker(ticker=ticker, first_day=market.FIRST_DAY),),
    )
