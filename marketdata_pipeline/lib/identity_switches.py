"""Ticker switches checked against the stored bars (no request).

The vendor's event dates can be days off (its own client mock dates the META change 2022-06-11,
its spec 2022-06-09): each switch between two tickers of one security is moved to the days the
stored bars show (`identity.cross_check`), when a load places it and again after every stock
run's candles are stored (`recheck_switches`, the `ticker_switches` asset).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

import psycopg

from marketdata_pipeline.lib.identity import EVENT_SLACK_DAYS, cross_check
from marketdata_pipeline.lib.postgres.securities import (
    TickerInterval,
    all_intervals,
    replace_intervals,
)


def traded_days(
    conn: psycopg.Connection, intervals: Sequence[TickerInterval]
) -> dict[str, list[dt.date]]:
    """Stored stock bar days of the tickers at each switch, near the switch (for cross_check)."""
    slack = dt.timedelta(days=EVENT_SLACK_DAYS)
    by_security: dict[str, list[TickerInterval]] = {}
    for interval in intervals:
        by_security.setdefault(interval.security_id, []).append(interval)
    windows: list[tuple[str, dt.date, dt.date]] = []
    for held in by_security.values():
        held.sort(key=lambda i: i.first_day)
        for old, new in itertools.pairwise(held):
            for ticker in (old.ticker, new.ticker):
                windows.append((ticker, new.first_day - slack, new.first_day + slack))
    out: dict[str, list[dt.date]] = {}
    for ticker, first, last in windows:
        rows = conn.execute(
            "SELECT day FROM marketdata.stock_daily_candles"
            " WHERE symbol = %s AND day BETWEEN %s AND %s ORDER BY day",
            (ticker, first, last),
        ).fetchall()
        out.setdefault(ticker, [])
        out[ticker] = sorted(set(out[ticker]) | {r[0] for r in rows})
    return out


def recheck_switches(conn: psycopg.Connection) -> list[str]:
    """Move stored ticker switches to the days the stored bars show (no request).

    Runs after candles are stored: a switch dated by the vendor's event is confirmed or moved
    as soon as the bars around it are in the store, not only at the next daily load. Returns
    the switches moved (`META 2022-06-11->2022-06-09`).
    """
    intervals = all_intervals(conn)
    checked = cross_check(intervals, traded_days(conn, intervals))
    changed = {
        new.security_id
        for old, new in zip(intervals, checked, strict=True)
        if (old.first_day, old.last_day) != (new.first_day, new.last_day)
    }
    moved = [
        f"{new.ticker} {old.first_day}->{new.first_day}"
        for old, new in zip(intervals, checked, strict=True)
        if old.first_day != new.first_day
    ]
    if changed:
        with conn.transaction():
            replace_intervals(conn, [i for i in checked if i.security_id in changed], "candles")
    return moved
