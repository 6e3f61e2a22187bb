"""`marketdata.securities` and `marketdata.ticker_history`: which company a ticker meant, when.

A security's id is its composite FIGI where the vendor has one, else a derived `md:` id (see
`derived_security_id`). `ticker_history` holds the days it traded under each ticker; the database
refuses two owners of one ticker on one day (`AmbiguousOwnership`, naming both).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from marketdata_pipeline.lib.errors import InputError


class AmbiguousOwnership(InputError):
    """A ticker interval overlaps another security's interval of the same ticker."""


class UnknownTicker(InputError):
    """Nobody held the ticker on the day asked about (as far as the store knows)."""


@dataclass(frozen=True)
class Security:
    """One security as the vendor's ticker reference describes it."""

    security_id: str
    name: str | None
    type: str | None
    primary_exchange: str | None
    cik: str | None
    composite_figi: str | None
    share_class_figi: str | None
    list_date: dt.date | None
    delisted_date: dt.date | None
    active: bool
    market: str = "stocks"


@dataclass(frozen=True)
class TickerInterval:
    """The days (both inclusive; `last_day` None while current) a security held a ticker."""

    security_id: str
    ticker: str
    first_day: dt.date
    last_day: dt.date | None

    def holds(self, day: dt.date) -> bool:
        """True when the interval covers `day`."""
        return self.first_day <= day and (self.last_day is None or day <= self.last_day)

    def overlaps(self, first: dt.date, last: dt.date) -> bool:
        """True when the interval shares a day with [first, last]."""
        return self.first_day <= last and (self.last_day is None or first <= self.last_day)


@dataclass(frozen=True)
class Resolution:
    """What `resolve` answers: the security a ticker meant on a day, and that interval."""

    security: Security
    interval: TickerInterval


def derived_security_id(ticker: str, cik: str | None, anchor: dt.date | str | None) -> str:
    """The id of a security the vendor gives no FIGI: `md:` + 16 hex digits of a hash of its
    first-seen ticker, CIK and anchor (delisting or list date). Fixed once stored: later rows
    of the same security are matched to it by ticker ownership, not recomputed."""
    text = f"{ticker}|{cik or ''}|{anchor or ''}"
    return "md:" + hashlib.sha256(text.encode()).hexdigest()[:16]


_SECURITY_COLUMNS = (
    "security_id, name, type, primary_exchange, cik, composite_figi, share_class_figi,"
    " list_date, delisted_date, active, market"
)


def upsert_securities(conn: psycopg.Connection, securities: Iterable[Security], source: str) -> int:
    """Insert or update securities (in the caller's transaction); returns how many."""
    rows = [
        (
            s.security_id,
            s.name,
            s.type,
            s.primary_exchange,
            s.cik,
            s.composite_figi,
            s.share_class_figi,
            s.list_date,
            s.delisted_date,
            s.active,
            s.market,
            source,
        )
        for s in securities
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO marketdata.securities ({_SECURITY_COLUMNS}, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (security_id) DO UPDATE SET"
            " name = EXCLUDED.name, type = EXCLUDED.type,"
            " primary_exchange = EXCLUDED.primary_exchange,"
            " cik = coalesce(EXCLUDED.cik, marketdata.securities.cik),"
            " share_class_figi = coalesce(EXCLUDED.share_class_figi,"
            "   marketdata.securities.share_class_figi),"
            " list_date = coalesce(EXCLUDED.list_date, marketdata.securities.list_date),"
            " delisted_date = EXCLUDED.delisted_date, active = EXCLUDED.active,"
            " source = EXCLUDED.source, updated_at = now()",
            rows,
        )
    return len(rows)


def replace_intervals(
    conn: psycopg.Connection, intervals: Iterable[TickerInterval], source: str
) -> int:
    """Make the stored intervals of each named security exactly `intervals`.

    Runs in a savepoint of the caller's transaction; raises AmbiguousOwnership (naming both
    securities) when an interval overlaps another security's interval of the same ticker, and
    then leaves the stored history as it was.
    """
    by_security: dict[str, list[TickerInterval]] = {}
    for interval in intervals:
        by_security.setdefault(interval.security_id, []).append(interval)
    try:
        with conn.transaction():
            for security_id, held in by_security.items():
                conn.execute(
                    "DELETE FROM marketdata.ticker_history WHERE security_id = %s", (security_id,)
                )
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO marketdata.ticker_history"
                        " (security_id, ticker, first_day, last_day, source)"
                        " VALUES (%s, %s, %s, %s, %s)",
                        [(i.security_id, i.ticker, i.first_day, i.last_day, source) for i in held],
                    )
    except psycopg.errors.ExclusionViolation as exc:
        message = exc.diag.message_primary or str(exc)
        raise AmbiguousOwnership(message) from None
    return sum(len(v) for v in by_security.values())


def intervals_of(conn: psycopg.Connection, security_id: str) -> list[TickerInterval]:
    """A security's ticker intervals, oldest first."""
    rows = conn.execute(
        "SELECT security_id, ticker, first_day, last_day FROM marketdata.ticker_history"
        " WHERE security_id = %s ORDER BY first_day",
        (security_id,),
    ).fetchall()
    return [TickerInterval(*row) for row in rows]


def all_intervals(conn: psycopg.Connection) -> list[TickerInterval]:
    """Every stored ticker interval, by ticker then first day."""
    rows = conn.execute(
        "SELECT security_id, ticker, first_day, last_day FROM marketdata.ticker_history"
        " ORDER BY ticker, first_day"
    ).fetchall()
    return [TickerInterval(*row) for row in rows]


def security(conn: psycopg.Connection, security_id: str) -> Security | None:
    """One stored security, or None."""
    row = conn.execute(
        f"SELECT {_SECURITY_COLUMNS} FROM marketdata.securities WHERE security_id = %s",
        (security_id,),
    ).fetchone()
    return None if row is None else Security(*row)


def resolve(conn: psycopg.Connection, ticker: str, day: dt.date) -> Resolution:
    """The security `ticker` meant on `day` (through `marketdata.security_at`).

    Raises UnknownTicker, saying who held the ticker when, if anyone, when nobody held it then.
    """
    row = conn.execute("SELECT marketdata.security_at(%s, %s)", (ticker, day)).fetchone()
    security_id = row[0] if row else None
    if security_id is None:
        known = conn.execute(
            "SELECT security_id, first_day, last_day FROM marketdata.ticker_history"
            " WHERE ticker = %s ORDER BY first_day",
            (ticker,),
        ).fetchall()
        if not known:
            raise UnknownTicker(
                f"no security in the store ever traded as {ticker!r}; load the ticker reference"
                " first (materialise the reference assets, or run a backfill)"
            )
        held = "; ".join(f"{sid} from {first} to {last or 'now'}" for sid, first, last in known)
        raise UnknownTicker(f"nobody held {ticker!r} on {day.isoformat()} (held by {held})")
    found = security(conn, security_id)
    assert found is not None  # ticker_history references securities
    interval = next(
        i for i in intervals_of(conn, security_id) if i.ticker == ticker and i.holds(day)
    )
    return Resolution(found, interval)


def tickers_in_window(
    conn: psycopg.Connection, tickers: Iterable[str], first: dt.date, last: dt.date
) -> set[str]:
    """Every ticker the securities behind `tickers` traded under in [first, last].

    A tracked ticker follows its company: tracking FB fetches META after the rename. The
    company is the holder of the ticker on `last`, else its latest holder before it, so a
    delisted or renamed-away ticker still means its own company. Tickers the store has no
    identity for stand for themselves.
    """
    names = sorted(set(tickers))
    if not names:
        return set()
    rows = conn.execute(
        """
        WITH holders AS (
            SELECT DISTINCT ON (h.ticker) h.ticker, h.security_id
            FROM marketdata.ticker_history h
            WHERE h.ticker = ANY(%(names)s) AND h.first_day <= %(last)s
            ORDER BY h.ticker, h.first_day DESC
        )
        SELECT h.ticker FROM holders s
        JOIN marketdata.ticker_history h ON h.security_id = s.security_id
        WHERE h.first_day <= %(last)s AND (h.last_day IS NULL OR h.last_day >= %(first)s)
        """,
        {"names": names, "first": first, "last": last},
    ).fetchall()
    return set(names) | {r[0] for r in rows}
