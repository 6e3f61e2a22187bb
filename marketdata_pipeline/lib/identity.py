"""From the vendor's ticker reference to securities and their ticker intervals (pure logic).

The vendor's list has one row per (ticker, owner): a renamed company shows its old ticker as
delisted and its new one as listed, both with the same composite FIGI; a reused ticker shows
once per owner. So:

- rows are grouped into securities by composite FIGI; a row without one is its own security
  with a derived id (kept stable by matching the store's existing owner of that ticker);
- a security with several tickers, or holding a ticker someone else held, needs its
  ticker-change events (`needs_events`) to place the switches;
- the vendor's event dates can be days off, so each switch is cross-checked against the days
  the tickers really traded in stored candles (`cross_check`): the new ticker starts on its
  first stored bar after the old ticker's last one, near the event date.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from marketdata_pipeline.lib.polygon.reference import TickerEvent, TickerRecord
from marketdata_pipeline.lib.postgres.securities import (
    Security,
    TickerInterval,
    derived_security_id,
)

NEW_YORK = ZoneInfo("America/New_York")
#: A composite FIGI: BBG and nine upper-case letters or digits.
FIGI = re.compile(r"BBG[0-9A-Z]{9}")
#: How far (calendar days) stored bars may move a vendor event date.
EVENT_SLACK_DAYS = 10
_ONE_DAY = dt.timedelta(days=1)


def last_day_before(delisted_utc: dt.datetime) -> dt.date:
    """The last trading day of a ticker delisted at `delisted_utc` (the day before the New
    York date of the delisting instant)."""
    return delisted_utc.astimezone(NEW_YORK).date() - _ONE_DAY


@dataclass(frozen=True)
class SecurityRows:
    """The ticker-list rows of one security, and its id."""

    security_id: str
    rows: tuple[TickerRecord, ...]

    @property
    def active(self) -> bool:
        """True when one of its tickers is listed."""
        return any(r.active for r in self.rows)

    @property
    def tickers(self) -> set[str]:
        """Its tickers, as listed."""
        return {r.ticker for r in self.rows}

    @property
    def delisted_date(self) -> dt.date | None:
        """Its last trading day, when every ticker is delisted."""
        if self.active:
            return None
        days = [last_day_before(r.delisted_utc) for r in self.rows if r.delisted_utc]
        return max(days) if days else None

    def security(self) -> Security:
        """The `securities` row (fields from its listed row, else its latest one)."""
        main = max(
            self.rows,
            key=lambda r: (r.active, r.delisted_utc or dt.datetime.max.replace(tzinfo=dt.UTC)),
        )
        return Security(
            security_id=self.security_id,
            name=main.name,
            type=main.type,
            primary_exchange=main.primary_exchange,
            cik=main.cik,
            composite_figi=main.composite_figi,
            share_class_figi=main.share_class_figi,
            list_date=min((r.list_date for r in self.rows if r.list_date), default=None),
            delisted_date=self.delisted_date,
            active=self.active,
            market=main.market,
        )


def group_securities(
    records: Iterable[TickerRecord], existing: Sequence[TickerInterval] = ()
) -> list[SecurityRows]:
    """Rows grouped into securities: by composite FIGI, else one security per row whose derived
    id is the store's existing owner of that ticker when there is one."""
    by_figi: dict[str, list[TickerRecord]] = {}
    singles: list[SecurityRows] = []
    derived_owner = {
        (i.ticker, i.last_day): i.security_id for i in existing if i.security_id.startswith("md:")
    }
    open_owner = {
        i.ticker: i.security_id
        for i in existing
        if i.security_id.startswith("md:") and i.last_day is None
    }
    for record in records:
        if record.composite_figi and FIGI.fullmatch(record.composite_figi):
            by_figi.setdefault(record.composite_figi, []).append(record)
            continue
        if record.composite_figi:
            # Not a FIGI (the vendor's data has junk): the row is identified like one without.
            record = replace(record, composite_figi=None)
        last = last_day_before(record.delisted_utc) if record.delisted_utc else None
        # Matched to the stored owner: the id fixed when first seen survives its delisting.
        security_id = derived_owner.get((record.ticker, last)) or open_owner.get(record.ticker)
        if security_id is None:
            anchor = last.isoformat() if last else "listed"
            security_id = derived_security_id(record.ticker, record.cik, anchor)
        singles.append(SecurityRows(security_id, (record,)))
    grouped = [SecurityRows(figi, tuple(rows)) for figi, rows in by_figi.items()]
    return sorted(grouped + singles, key=lambda s: s.security_id)


def needs_events(
    securities: Sequence[SecurityRows], existing: Sequence[TickerInterval] = ()
) -> list[SecurityRows]:
    """Securities whose intervals the ticker list alone cannot place: several tickers, or a
    ticker another security also had (in these rows or in the store, `existing`). Only those
    with a FIGI can be asked about by id."""
    owners: dict[str, set[str]] = {}
    for sec in securities:
        for ticker in sec.tickers:
            owners.setdefault(ticker, set()).add(sec.security_id)
    for interval in existing:
        if interval.ticker in owners:
            owners[interval.ticker].add(interval.security_id)
    holders = {ticker: len(ids) for ticker, ids in owners.items()}
    return [
        s
        for s in securities
        if s.security_id.startswith("BBG")
        and (len(s.tickers) > 1 or any(holders[t] > 1 for t in s.tickers))
    ]


def intervals_for(
    sec: SecurityRows,
    events: Sequence[TickerEvent] | None,
    floor: dt.date,
    known_first: Mapping[tuple[str, str], dt.date] | None = None,
) -> list[TickerInterval]:
    """A security's intervals from its events (oldest first; every ticker they name) or,
    without them, from its rows: a start the rows cannot date is the stored one
    (`known_first`, by security and ticker), else `floor`, the first day the store covers."""
    last = sec.delisted_date
    events = list(events or ())
    if events:
        out = []
        for i, event in enumerate(events):
            end = events[i + 1].day - _ONE_DAY if i + 1 < len(events) else last
            out.append(TickerInterval(sec.security_id, event.ticker, event.day, end))
        return _merged(out)
    ordered = sorted(
        sec.rows, key=lambda r: (r.active, r.delisted_utc or dt.datetime.max.replace(tzinfo=dt.UTC))
    )
    out, start = [], floor
    for row in ordered:
        end = (
            None
            if row.active
            else (last_day_before(row.delisted_utc) if row.delisted_utc else None)
        )
        if known_first and (sec.security_id, row.ticker) in known_first and start == floor:
            start = known_first[sec.security_id, row.ticker]
        out.append(TickerInterval(sec.security_id, row.ticker, start, end))
        if end is not None:
            start = end + _ONE_DAY
    return out


def _merged(intervals: list[TickerInterval]) -> list[TickerInterval]:
    """Consecutive events naming the same ticker are one interval; empty ones are dropped."""
    out: list[TickerInterval] = []
    for interval in intervals:
        if interval.last_day is not None and interval.last_day < interval.first_day:
            continue
        if out and out[-1].ticker == interval.ticker:
            out[-1] = replace(out[-1], last_day=interval.last_day)
        else:
            out.append(interval)
    return out


def touched(sec: SecurityRows, existing: Sequence[TickerInterval]) -> bool:
    """True when the rows say something the store does not hold yet: a new security, a listed
    ticker it does not hold open, or a delisted ticker it still holds open."""
    held = [i for i in existing if i.security_id == sec.security_id]
    if not held:
        return True
    open_tickers = {i.ticker for i in held if i.last_day is None}
    return any((row.ticker in open_tickers) != row.active for row in sec.rows)


def make_room(intervals: list[TickerInterval], known_start: set[str]) -> list[TickerInterval]:
    """Start a later owner of a reused ticker after the earlier owner's last day, where the
    later owner's start was only the store's floor (not known from events)."""
    by_ticker: dict[str, list[TickerInterval]] = {}
    for interval in intervals:
        by_ticker.setdefault(interval.ticker, []).append(interval)
    out = []
    for held in by_ticker.values():
        for interval in held:
            if interval.security_id in known_start:
                out.append(interval)
                continue
            earlier_ends = [
                e.last_day
                for e in held
                if e.security_id != interval.security_id
                and e.last_day is not None
                and (interval.last_day is None or e.last_day < interval.last_day)
            ]
            start = max([interval.first_day, *(d + _ONE_DAY for d in earlier_ends if d)])
            if interval.last_day is None or start <= interval.last_day:
                out.append(replace(interval, first_day=start))
    return out


def cross_check(
    intervals: list[TickerInterval], traded: Mapping[str, Sequence[dt.date]]
) -> list[TickerInterval]:
    """Move each switch between two tickers of one security to the days the bars show.

    For a switch A -> B dated E: when the stored bars of B near E start after the last stored
    bar of A near E, B starts on its first such bar and A ends the day before. `traded` maps a
    ticker to its stored bar days (ascending).
    """
    out = list(intervals)
    by_security: dict[str, list[int]] = {}
    for index, interval in enumerate(out):
        by_security.setdefault(interval.security_id, []).append(index)
    slack = dt.timedelta(days=EVENT_SLACK_DAYS)
    for indexes in by_security.values():
        indexes.sort(key=lambda i: out[i].first_day)
        for a, b in itertools.pairwise(indexes):
            old, new = out[a], out[b]
            event = new.first_day
            old_days = [
                d for d in traded.get(old.ticker, ()) if event - slack <= d <= event + slack
            ]
            new_days = [
                d for d in traded.get(new.ticker, ()) if event - slack <= d <= event + slack
            ]
            if not old_days or not new_days:
                continue
            after = [d for d in new_days if d > max(old_days)]
            if not after or after[0] == event:
                continue
            start = after[0]
            out[b] = replace(new, first_day=start)
            out[a] = replace(old, last_day=start - _ONE_DAY)
    return out
