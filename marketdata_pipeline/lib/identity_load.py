"""Load the ticker reference into `securities` / `ticker_history`, at most once a day per store.

The first load: the ticker list of the market, listed and delisted (ceil(tickers / 1000)
requests), the ticker-change events of the securities that need them (renamed, or holding a
reused ticker: one request each), intervals placed from them, cross-checked against the days
each ticker traded in stored candles, and written in one transaction. A daily load after it
reads only what changed since (`identity_changes`: the listed and the delisted rows newest
first down to the last load's watermark, and a slice of rolling reconciliation), plus the
events of renamed securities: 3 requests on a day without a rename, whatever the market's
size. A write that would give a ticker two owners on one day is refused (naming both) and
leaves the stored identity as it was.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import psycopg

from marketdata_pipeline.lib.identity import (
    SecurityRows,
    cross_check,
    group_securities,
    intervals_for,
    make_room,
    needs_events,
)
from marketdata_pipeline.lib.identity_changes import (
    DELISTED_KIND,
    FULL_KIND,
    RECONCILE_PAGES,
    REFRESH_KIND,
    changed,
    fetch_changes,
    incremental_state,
    renamed,
    with_stored_rows,
)
from marketdata_pipeline.lib.identity_switches import traded_days
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.reference import (
    TickerEvent,
    TickerRecord,
    fetch_ticker_events,
    fetch_tickers,
)
from marketdata_pipeline.lib.postgres.securities import (
    TickerInterval,
    all_intervals,
    replace_intervals,
    upsert_securities,
)
from marketdata_pipeline.lib.postgres.universe import list_rules, record_refresh, refreshed_on

__all__ = [
    "FULL_KIND",
    "REFRESH_KIND",
    "IdentityLoad",
    "ensure_loaded",
    "load_identity",
    "write_identity",
]
#: What `marketdata.ticker_history.ticker` accepts (its CHECK constraint).
STORED_TICKER = re.compile(r"[A-Z0-9][A-Za-z0-9.]{0,19}")


@dataclass
class IdentityLoad:
    """What one load did (or that it was skipped: already loaded today)."""

    skipped: bool = False
    mode: str = "full"  # or "changes": a daily load after the first
    requests: int = 0
    securities: int = 0
    intervals: int = 0
    events_fetched: int = 0
    moved_by_candles: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, object]:
        """Dagster metadata."""
        return {
            "skipped_already_loaded_today": self.skipped,
            "mode": self.mode,
            "requests": self.requests,
            "securities": self.securities,
            "ticker_intervals": self.intervals,
            "events_fetched": self.events_fetched,
            "switches_moved_by_stored_bars": ", ".join(self.moved_by_candles[:20]),
            "records_left_out": len(self.rejected),
        }


def load_identity(
    client: PolygonClient,
    conn: psycopg.Connection,
    *,
    floor: dt.date,
    today: dt.date,
    market: str = "stocks",
    force: bool = False,
    reconcile_pages: int = RECONCILE_PAGES,
) -> IdentityLoad:
    """Load the market's ticker reference unless it was loaded today (or `force`).

    The first load (a forced one, or one on a store without a watermark) reads the listed and
    the delisted tickers. Later ones read what changed since the last (`fetch_changes`),
    fetch the events of renamed securities only, and rewrite only the securities whose rows
    changed. `floor` is the first day the store covers: the start of a ticker interval the
    vendor's data cannot date; `reconcile_pages` the pages of rolling reconciliation a daily
    load reads.
    """
    result = IdentityLoad()
    if not force and refreshed_on(conn, REFRESH_KIND, market) == today:
        result.skipped = True
        return result
    before = client.stats.attempts
    full = force or refreshed_on(conn, FULL_KIND, market) is None
    state = None if full else incremental_state(conn, market)
    existing = all_intervals(conn)
    if state is None:
        listed = fetch_tickers(client, market=market, include_delisted=False)
        delisted = fetch_tickers(client, market=market, listed=False)
        result.rejected.extend(listed.rejected + delisted.rejected)
        records = _storable(listed.records + delisted.records, result)
        marks = {
            REFRESH_KIND: _newest(r.last_updated_utc for r in listed.records),
            DELISTED_KIND: _newest(r.delisted_utc for r in delisted.records),
        }
        resume_after = None
        securities = group_securities(records, existing)
        event_ids = {s.security_id for s in needs_events(securities, existing)}
    else:
        result.mode = "changes"
        changes = fetch_changes(
            client, conn, state, existing, market=market, reconcile_pages=reconcile_pages
        )
        result.rejected.extend(changes.rejected)
        records = _storable(changes.records, result)
        marks = {REFRESH_KIND: changes.listed_mark, DELISTED_KIND: changes.delisted_mark}
        resume_after = changes.resume_after
        securities = changed(group_securities(records, existing), existing)
        held = {i.security_id for i in existing}
        fresh = [s for s in securities if s.security_id not in held]
        event_ids = renamed(securities, existing)
        event_ids |= {s.security_id for s in needs_events(fresh, existing)}
        securities = with_stored_rows(conn, securities, existing)
    events = _events(client, [s for s in securities if s.security_id in event_ids], result)
    with conn.transaction():
        write_identity(conn, securities, events, existing, floor, result)
        result.requests = client.stats.attempts - before
        for kind, mark in marks.items():
            record_refresh(
                conn,
                kind,
                market,
                today,
                result.requests if kind == REFRESH_KIND else 0,
                records=len(records),
                # None (no row carried the instant): the next load reads from the start;
                # for the listed rows that means a full load again.
                watermark=mark,
                resume_after=resume_after if kind == REFRESH_KIND else None,
            )
        if state is None:
            record_refresh(conn, FULL_KIND, market, today, result.requests, records=len(records))
    return result


def _newest(instants: Iterable[dt.datetime | None]) -> dt.datetime | None:
    return max((i for i in instants if i is not None), default=None)


def _events(
    client: PolygonClient, securities: Sequence[SecurityRows], result: IdentityLoad
) -> dict[str, list[TickerEvent]]:
    """The ticker-change events of `securities` (one request each)."""
    events: dict[str, list[TickerEvent]] = {}
    for sec in securities:
        found_events = fetch_ticker_events(client, sec.security_id)
        result.events_fetched += 1
        if found_events:
            events[sec.security_id] = found_events
    return events


def write_identity(
    conn: psycopg.Connection,
    securities: Sequence[SecurityRows],
    events: dict[str, list[TickerEvent]],
    existing: Sequence[TickerInterval],
    floor: dt.date,
    result: IdentityLoad,
) -> None:
    """Write `securities` and their intervals (from `events` where given), clear of the
    stored owners of the same tickers and cross-checked against the stored bars: the one
    writer of the vendor's identity, for the ticker list and for hand-typed tickers alike.
    Raises AmbiguousOwnership (naming both securities) when a ticker would have two owners
    on one day; call it in a transaction, which then stores nothing."""
    checked = _placed(conn, securities, events, existing, floor, result)
    result.securities = upsert_securities(conn, (s.security() for s in securities), "polygon")
    result.intervals = replace_intervals(conn, checked, "polygon")


def _placed(
    conn: psycopg.Connection,
    securities: Sequence[SecurityRows],
    events: dict[str, list[TickerEvent]],
    existing: Sequence[TickerInterval],
    floor: dt.date,
    result: IdentityLoad,
) -> list[TickerInterval]:
    """The intervals of `securities`, from their events or rows, clear of the stored owners
    of the same tickers and cross-checked against the stored bars."""
    known_first = {(i.security_id, i.ticker): i.first_day for i in existing}
    intervals: list[TickerInterval] = []
    for sec in securities:
        intervals.extend(intervals_for(sec, events.get(sec.security_id), floor, known_first))
    rewritten = {s.security_id for s in securities}
    # Stored owners of the same tickers keep their days; later owners start after them.
    tickers = {i.ticker for i in intervals}
    others = [i for i in existing if i.security_id not in rewritten and i.ticker in tickers]
    room = make_room(intervals + others, set(events) | {i.security_id for i in others})
    intervals = [i for i in room if i.security_id in rewritten]
    checked = cross_check(intervals, traded_days(conn, intervals))
    result.moved_by_candles = [
        f"{new.ticker} {old.first_day}->{new.first_day}"
        for old, new in zip(sorted(intervals, key=_key), sorted(checked, key=_key), strict=True)
        if old.first_day != new.first_day
    ]
    return checked


def _storable(records: Iterable[TickerRecord], result: IdentityLoad) -> list[TickerRecord]:
    """The rows whose ticker the store accepts (ticker_history's CHECK): one odd vendor
    ticker must not refuse the whole load; the others are reported."""
    out = []
    for record in records:
        if STORED_TICKER.fullmatch(record.ticker):
            out.append(record)
        else:
            result.rejected.append(f"ticker {record.ticker!r} is not a storable stock ticker")
    return out


def _key(interval: TickerInterval) -> tuple[str, str]:
    return (interval.security_id, interval.ticker)


def ensure_loaded(
    client_of: Callable[[], PolygonClient],
    conn: psycopg.Connection,
    *,
    floor: dt.date,
    today: dt.date,
) -> IdentityLoad | None:
    """Load the ticker reference now when a tracking rule needs it and it was not loaded today
    (None: nothing to do). A stock run calls it before choosing its tickers, whatever order
    Dagster gives the run's steps."""
    markets = {rule.market for rule in list_rules(conn)}
    pending = sorted(m for m in markets if refreshed_on(conn, REFRESH_KIND, m) != today)
    if not pending:
        return None
    client = client_of()
    result = IdentityLoad()
    for market in pending:
        result = load_identity(client, conn, floor=floor, today=today, market=market)
    return result
