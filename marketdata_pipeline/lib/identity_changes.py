"""The daily ticker-reference load after the first: only what changed since the last one.

Reading the whole listed market every day costs ceil(listed / 1000) requests (about 12 for
the US market) to learn of a handful of changes. The vendor dates its rows, so instead:

- listed rows newest first (`sort=last_updated_utc&order=desc`), stopping at the first row
  older than the newest one the last load saw (the watermark, in `reference_refresh`): new
  listings and the new tickers of renames, one page on an ordinary day;
- delisted rows newest first (`sort=delisted_utc&order=desc`), stopping likewise (less a
  week: a delisting can be recorded days after its date, and a week of them is one page);
- a rolling reconciliation of `RECONCILE_PAGES` pages of the listed tickers in ticker order
  (`ticker.gt=<where the last pass stopped>`), so a change the watermarks missed (a vendor
  that back-dates a row) is still found within ceil(listed / 1000 / pages) days: the pages'
  rows are compared with the store like the others, and a ticker the store holds open in
  that range but the vendor no longer lists is asked about (`active=false&ticker=`).

The rows read are merged with the stored intervals of their securities (`with_stored_rows`),
so a security is rewritten whole from what it is known to be plus what changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import psycopg

from marketdata_pipeline.lib.identity import NEW_YORK, SecurityRows, touched
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.reference import (
    TickerRecord,
    fetch_recent,
    fetch_ticker_range,
    fetch_tickers,
)
from marketdata_pipeline.lib.postgres.reference_refresh import RefreshRecord, last_refresh
from marketdata_pipeline.lib.postgres.securities import TickerInterval, security

#: The ticker load of a market: its day, the newest `last_updated_utc` of the listed rows taken
#: in (`watermark`), and where the rolling reconciliation stopped (`resume_after`).
REFRESH_KIND = "tickers"
#: The newest `delisted_utc` taken in.
DELISTED_KIND = "tickers_delisted"
#: When the delisted tickers were last read in full (the first load, or a forced one).
FULL_KIND = "tickers_full"
#: Pages of the listed tickers re-read each day, in ticker order.
RECONCILE_PAGES = 1
#: How far before the delisting watermark the delisted rows are read again.
DELISTED_SLACK = dt.timedelta(days=7)


@dataclass
class Changes:
    """The rows a daily load read, what it cost, and where the next one resumes."""

    records: list[TickerRecord] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    requests: int = 0
    listed_mark: dt.datetime | None = None
    delisted_mark: dt.datetime | None = None
    resume_after: str | None = None
    reconciled: int = 0  # listed rows re-read by the reconciliation
    asked: list[str] = field(default_factory=list)  # tickers found missing by it


def incremental_state(conn: psycopg.Connection, market: str) -> RefreshRecord | None:
    """The last load's record when a daily load can start from it (it has a watermark)."""
    last = last_refresh(conn, REFRESH_KIND, market)
    return last if last is not None and last.watermark is not None else None


def planned_load(conn: psycopg.Connection, market: str = "stocks") -> str:
    """What the next ticker-reference load of `market` will ask, for plans and dry runs."""
    if last_refresh(conn, FULL_KIND, market) is not None and incremental_state(conn, market):
        return (
            f"only what changed since the last load ({2 + RECONCILE_PAGES} requests, plus one "
            "per renamed security)"
        )
    return (
        "the whole list (about 2 requests per 1,000 tickers, listed and delisted, plus one "
        "per renamed security)"
    )


def fetch_changes(
    client: PolygonClient,
    conn: psycopg.Connection,
    state: RefreshRecord,
    existing: Sequence[TickerInterval],
    *,
    market: str,
    reconcile_pages: int = RECONCILE_PAGES,
) -> Changes:
    """The rows changed since the load `state` records, and a reconciliation slice."""
    out = Changes(listed_mark=state.watermark)
    listed = fetch_recent(
        client, market=market, active=True, sort="last_updated_utc", since=state.watermark
    )
    delisted_state = last_refresh(conn, DELISTED_KIND, market)
    delisted_mark = delisted_state.watermark if delisted_state else None
    delisted = fetch_recent(
        client,
        market=market,
        active=False,
        sort="delisted_utc",
        # No delisting seen yet: all of them (one page while there are few).
        since=delisted_mark - DELISTED_SLACK if delisted_mark else None,
    )
    out.delisted_mark = _newest(delisted_mark, delisted.newest)
    out.listed_mark = _newest(state.watermark, listed.newest)
    reconciled = fetch_ticker_range(
        client, market=market, after=state.resume_after, pages=reconcile_pages
    )
    out.resume_after = None if reconciled.exhausted else reconciled.last or state.resume_after
    if reconcile_pages <= 0:
        out.resume_after = state.resume_after
    out.reconciled = len(reconciled.records)
    for fetched in (listed, delisted, reconciled):
        out.records.extend(fetched.records)
        out.rejected.extend(fetched.rejected)
        out.requests += fetched.requests
    if reconciled.requests:
        high = None if reconciled.exhausted else reconciled.last
        seen = {r.ticker for r in out.records}
        for ticker in _missing(existing, seen, state.resume_after, high):
            found = fetch_tickers(client, market=market, listed=False, ticker=ticker)
            out.requests += found.requests
            out.records.extend(r for r in found.records if not r.active)
            out.rejected.extend(found.rejected)
            out.asked.append(ticker)
    out.records = _distinct(out.records)
    return out


def _distinct(records: Sequence[TickerRecord]) -> list[TickerRecord]:
    """One row per (ticker, owner, listing state): the passes overlap (a new listing is in the
    newest rows and in the reconciliation slice)."""
    seen: dict[tuple, TickerRecord] = {}
    for r in records:
        seen.setdefault((r.ticker, r.composite_figi, r.cik, r.active, r.delisted_utc), r)
    return list(seen.values())


def _newest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return max((x for x in (a, b) if x is not None), default=None)


def _missing(
    existing: Sequence[TickerInterval], seen: set[str], low: str | None, high: str | None
) -> list[str]:
    """Tickers the store holds open in (low, high] that no row read mentions."""
    return sorted(
        {
            i.ticker
            for i in existing
            if i.last_day is None
            and (low is None or i.ticker > low)
            and (high is None or i.ticker <= high)
        }
        - seen
    )


def changed(
    securities: Sequence[SecurityRows], existing: Sequence[TickerInterval]
) -> list[SecurityRows]:
    """The securities whose rows say something the store does not hold yet (`touched`), with
    the store indexed once: a reconciliation slice is a thousand rows."""
    by_security: dict[str, list[TickerInterval]] = {}
    for interval in existing:
        by_security.setdefault(interval.security_id, []).append(interval)
    return [s for s in securities if touched(s, by_security.get(s.security_id, ()))]


def renamed(securities: Sequence[SecurityRows], existing: Sequence[TickerInterval]) -> set[str]:
    """Stored securities with a FIGI whose rows name a ticker they never held: a rename (or a
    ticker taken back), whose switch date only the ticker-change events give."""
    held: dict[str, set[str]] = {}
    for interval in existing:
        held.setdefault(interval.security_id, set()).add(interval.ticker)
    return {
        s.security_id
        for s in securities
        if s.security_id in held
        and s.security_id.startswith("BBG")
        and s.tickers - held[s.security_id]
    }


def _delisted_utc(last_day: dt.date) -> dt.datetime:
    """The instant the vendor would date a delisting after `last_day` (New York midnight)."""
    local = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tzinfo=NEW_YORK)
    return local.astimezone(dt.UTC)


def with_stored_rows(
    conn: psycopg.Connection,
    securities: Sequence[SecurityRows],
    existing: Sequence[TickerInterval],
) -> list[SecurityRows]:
    """Each stored security completed with rows standing for its stored intervals that the
    rows read do not mention (a daily load reads only what changed: without them, rewriting a
    security would drop its other tickers)."""
    by_security: dict[str, list[TickerInterval]] = {}
    for interval in existing:
        by_security.setdefault(interval.security_id, []).append(interval)
    out = []
    for sec in securities:
        held = by_security.get(sec.security_id)
        stored = security(conn, sec.security_id) if held else None
        if not held or stored is None:
            out.append(sec)
            continue
        template = TickerRecord(
            ticker="",
            name=stored.name,
            market=stored.market,
            type=stored.type,
            active=True,
            primary_exchange=stored.primary_exchange,
            cik=stored.cik,
            composite_figi=stored.composite_figi,
            share_class_figi=stored.share_class_figi,
            delisted_utc=None,
        )
        extra = tuple(
            replace(
                template,
                ticker=i.ticker,
                active=i.last_day is None,
                delisted_utc=None if i.last_day is None else _delisted_utc(i.last_day),
            )
            for i in sorted(held, key=lambda i: i.first_day)
            if i.ticker not in sec.tickers
        )
        out.append(SecurityRows(sec.security_id, extra + sec.rows))
    return out
