"""The store's record of reference-data reads: every SQL statement on `reference_refresh`.

A row per (kind, scope) says when that kind of reference data (`splits`, `dividends`,
`tickers`, ...) was last read for that scope (`market`: the whole market; `stocks`: one vendor
market), which event dates the read covered, and for incremental reads where the next one
resumes (`watermark`: the newest vendor change taken in; `resume_after`: where a rolling pass
stopped). Runs consult it to read each kind at most once a day; `refresh_lock` makes two runs
that start together read it once between them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

from marketdata_pipeline.lib.postgres.connection import connect


@dataclass(frozen=True)
class RefreshRecord:
    """The last read of one reference kind for one scope."""

    kind: str
    scope: str
    refreshed_on: dt.date  # the New York day of the read
    refreshed_at: dt.datetime
    covers_from: dt.date
    covers_to: dt.date
    requests: int
    records: int
    watermark: dt.datetime | None = None
    resume_after: str | None = None

    def covers(self, on: dt.date, start: dt.date, end: dt.date) -> bool:
        """True when this read happened on `on` and covered the event dates `start`..`end`."""
        return self.refreshed_on >= on and self.covers_from <= start and self.covers_to >= end


def last_refresh(conn: psycopg.Connection, kind: str, scope: str) -> RefreshRecord | None:
    """The last recorded read of `kind` for `scope`, or None if it was never read."""
    row = conn.execute(
        "SELECT kind, scope, refreshed_on, refreshed_at, covers_from, covers_to, requests,"
        " records, watermark, resume_after"
        " FROM marketdata.reference_refresh WHERE kind = %s AND scope = %s",
        (kind, scope),
    ).fetchone()
    return RefreshRecord(*row) if row else None


def record_refresh(
    conn: psycopg.Connection,
    kind: str,
    scope: str,
    *,
    refreshed_on: dt.date,
    covers: tuple[dt.date, dt.date],
    requests: int,
    records: int,
    watermark: dt.datetime | None = None,
    resume_after: str | None = None,
) -> None:
    """Remember a read of `kind` for `scope` (call it in the transaction that stores its rows,
    so a read whose rows were not stored is never taken as done). `watermark` and
    `resume_after` replace the stored ones (an incremental read passes on the old watermark
    when it found nothing newer)."""
    conn.execute(
        """
        INSERT INTO marketdata.reference_refresh AS r
            (kind, scope, refreshed_on, covers_from, covers_to, requests, records,
             watermark, resume_after)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (kind, scope) DO UPDATE SET
            refreshed_on = excluded.refreshed_on, refreshed_at = now(),
            covers_from = excluded.covers_from, covers_to = excluded.covers_to,
            requests = excluded.requests, records = excluded.records,
            watermark = excluded.watermark, resume_after = excluded.resume_after
        """,
        (
            kind,
            scope,
            refreshed_on,
            covers[0],
            covers[1],
            requests,
            records,
            watermark,
            resume_after,
        ),
    )


@contextmanager
def refresh_lock(database_url: str, kind: str) -> Iterator[None]:
    """Hold the store-wide lock of reading `kind` while inside.

    A session lock on a connection of its own: the read itself takes seconds to minutes (the
    request budget), far too long for a transaction, and a run that dies releases the lock
    with its connection. A second run waits here, then finds today's read recorded.
    """
    with connect(database_url, autocommit=True) as conn:
        key = f"marketdata.reference_refresh:{kind}"
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (key,))
