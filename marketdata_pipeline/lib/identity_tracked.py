"""A hand-typed ticker's security: its ticker details and its ticker changes, once a ticker.

Without a tracking rule the ticker list is not loaded (about 32 requests once and 3 a day,
for a user who tracks a few tickers). A tracked stock ticker the store holds no security for
(typed by hand, or one the vendor's list lacks: grouped daily carries thousands of those) is
identified on its own instead, at most once (`reference_refresh` kind `ticker_identity`, scope
the ticker, so a second run the same or the next day pays nothing):

- `/v3/reference/tickers/{ticker}`: who holds it (a ticker the vendor says nobody holds today,
  as after a rename, is asked again `date=` a day it traded: its last stored bar, else the
  run's first day);
- `/vX/reference/tickers/{figi}/events?types=ticker_change` (by ticker when there is no FIGI
  and the ticker is current): the security's tickers and their switch dates;
- when the ticker was renamed away, the details of its company's current ticker (its state
  today: listed, or delisted).

The rows go through the same writer as the ticker list (`write_identity`): intervals placed
from the events, clear of stored owners of the same tickers, cross-checked against stored
bars, and refused when one ticker would have two owners on a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.identity import FIGI, SecurityRows, group_securities
from marketdata_pipeline.lib.identity_load import STORED_TICKER, IdentityLoad, write_identity
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.errors import (
    PolygonAuthError,
    PolygonError,
    PolygonPlanError,
    PolygonUnavailableError,
)
from marketdata_pipeline.lib.polygon.reference import (
    TickerEvent,
    TickerRecord,
    fetch_ticker_details,
    fetch_ticker_events,
)
from marketdata_pipeline.lib.postgres.securities import (
    TickerInterval,
    all_intervals,
    intervals_of,
)
from marketdata_pipeline.lib.postgres.universe import record_refresh
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol

#: The record of a ticker identified on its own (scope: the ticker).
IDENTITY_KIND = "ticker_identity"
#: How the backfill's summary names these requests.
DETAILS, EVENTS = "ticker details", "ticker events"
#: Requests to identify one ticker: its details and its events (one more when renamed away).
REQUESTS_PER_TICKER = 2


@dataclass
class TrackedIdentity:
    """What identifying the pending tickers did."""

    requests: dict[str, int] = field(default_factory=dict)  # by kind: DETAILS, EVENTS
    identified: list[str] = field(default_factory=list)  # "FB: BBG000MM2P62 (FB, META)"
    unknown: list[str] = field(default_factory=list)  # tickers the vendor knows nobody for
    failed: dict[str, str] = field(default_factory=dict)  # ticker -> why (asked again later)

    @property
    def total(self) -> int:
        """Requests made."""
        return sum(self.requests.values())

    def problems(self) -> list[str]:
        """A line per ticker left without a security, for the run's log."""
        out = [
            f"{t}: the vendor's ticker reference knows no such ticker (ticker details 404); "
            "it is fetched as typed, without a security, and not asked about again"
            for t in self.unknown
        ]
        out += [
            f"{t}: not identified this run ({why}); asked again next run"
            for t, why in self.failed.items()
        ]
        return out


def pending_tickers(conn: psycopg.Connection, only: Sequence[str] | None = None) -> list[str]:
    """Active tracked stock tickers (of `only`, when given) the store holds no security for
    and never asked the vendor about."""
    rows = conn.execute(
        """
        SELECT t.symbol FROM marketdata.tracked_symbols t
        WHERE t.active AND t.asset_class = 'stock'
          AND (%(only)s::text[] IS NULL OR t.symbol = ANY(%(only)s::text[]))
          AND NOT EXISTS (SELECT 1 FROM marketdata.ticker_history h WHERE h.ticker = t.symbol)
          AND NOT EXISTS (SELECT 1 FROM marketdata.reference_refresh r
                          WHERE r.kind = %(kind)s AND r.scope = t.symbol)
        ORDER BY t.symbol
        """,
        {"only": None if only is None else list(only), "kind": IDENTITY_KIND},
    ).fetchall()
    return [r[0] for r in rows if STORED_TICKER.fullmatch(r[0]) and _valid(r[0])]


def _valid(ticker: str) -> bool:
    """A valid stock symbol (rows added by SQL can be invalid: the run reports those)."""
    try:
        parse_symbol(ticker, AssetClass.STOCK)
    except InputError:
        return False
    return True


def identify_tracked(
    client: PolygonClient,
    conn: psycopg.Connection,
    *,
    floor: dt.date,
    today: dt.date,
    first_day: dt.date | None = None,
    only: Sequence[str] | None = None,
) -> TrackedIdentity:
    """Identify every pending ticker (`pending_tickers`), each written and recorded in its
    own transaction. `floor` is the first day the store covers; `first_day` the run's first
    day (the `date=` of a ticker nobody holds today and with no stored bar). A request that
    fails leaves its ticker pending (a refused key or an unreachable vendor fails the call);
    AmbiguousOwnership propagates (nothing of that ticker stored)."""
    out = TrackedIdentity()
    # Read once: each ticker's security is added to it as it is written.
    existing = all_intervals(conn)
    for ticker in pending_tickers(conn, only):
        before = client.stats.attempts
        try:
            found = _look_up(client, conn, ticker, today, first_day, existing, out)
        except PolygonPlanError as exc:
            # The plan does not include the endpoint: the candles may still be served.
            out.failed[ticker] = str(exc)
            continue
        except (PolygonAuthError, PolygonUnavailableError):
            # The key is refused, or the vendor is down or unreachable: the run's candle
            # requests would fail the same way, so it fails here, on one request.
            raise
        except PolygonError as exc:
            out.failed[ticker] = str(exc)
            continue
        spent = client.stats.attempts - before
        with conn.transaction():
            if found is not None:
                sec, events = found
                write_identity(conn, [sec], events, existing, floor, IdentityLoad())
                existing = [i for i in existing if i.security_id != sec.security_id]
                existing += intervals_of(conn, sec.security_id)
                held = sec.tickers | {e.ticker for e in events.get(sec.security_id, [])}
                tickers = ", ".join(sorted(held))
                out.identified.append(f"{ticker}: {sec.security_id} ({tickers})")
            else:
                out.unknown.append(ticker)
            record_refresh(
                conn, IDENTITY_KIND, ticker, today, spent, records=0 if found is None else 1
            )
    return out


def _count(out: TrackedIdentity, kind: str) -> None:
    out.requests[kind] = out.requests.get(kind, 0) + 1


def _details(
    client: PolygonClient, ticker: str, on: dt.date | None, out: TrackedIdentity
) -> TickerRecord | None:
    _count(out, DETAILS)
    return fetch_ticker_details(client, ticker, on)


def _look_up(
    client: PolygonClient,
    conn: psycopg.Connection,
    ticker: str,
    today: dt.date,
    first_day: dt.date | None,
    existing: Sequence[TickerInterval],
    out: TrackedIdentity,
) -> tuple[SecurityRows, dict[str, list[TickerEvent]]] | None:
    """The ticker's security and its events (by security id), or None: nobody known."""
    record = _details(client, ticker, None, out)
    if record is None:
        # Nobody holds it today (renamed away, delisted): ask as of a day it traded.
        row = conn.execute(
            "SELECT max(day) FROM marketdata.stock_daily_candles WHERE symbol = %s", (ticker,)
        ).fetchone()
        traded = row[0] if row and row[0] else first_day
        if traded is not None and traded < today:
            record = _details(client, ticker, traded, out)
    if record is None:
        return None
    figi = record.composite_figi
    if figi is not None and not FIGI.fullmatch(figi):
        figi = None
    identifier = figi or (ticker if record.active else None)
    events: list[TickerEvent] | None = None
    if identifier is not None:
        _count(out, EVENTS)
        events = fetch_ticker_events(client, identifier)
    rows = [record]
    if events and not record.active and events[-1].ticker != ticker:
        # Renamed away: its company's state today comes with its current ticker.
        current = _details(client, events[-1].ticker, None, out)
        if current is not None and current.composite_figi == figi:
            rows.append(current)
    # One security: a second row joins only with the same FIGI.
    (sec,) = group_securities(rows, existing)
    return sec, ({sec.security_id: events} if events else {})
