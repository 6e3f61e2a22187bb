"""Client-side request budgets, enforced before a request is sent.

Polygon's free tier allows 5 requests a minute and answers 429 past that; paid tiers ask for under
100 requests a second. The budget is spent per *attempt* (retries cost quota too). Two flavours,
both on pyrate-limiter so the sliding-window arithmetic is not ours to get wrong:

- `LocalRateBudget`: one process (tests, the simulator benchmarks).
- `PostgresRateBudget`: shared by every process and run that uses the same API key against the
  same database, through pyrate-limiter's Postgres bucket (a table lock makes check-and-record
  atomic across processes). Two backfills started together then stay within the budget together.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Protocol

from pyrate_limiter import InMemoryBucket, Limiter, Rate


class RateBudget(Protocol):
    """Anything that blocks until one more request fits in the budget."""

    requests_per_minute: int
    window_seconds: float

    def acquire(self) -> None:
        """Block until a request may be sent, then count it."""
        ...

    def close(self) -> None:
        """Release connections or threads held by the budget."""
        ...


def budget_rates(requests_per_minute: int, window_seconds: float = 60.0) -> list[Rate]:
    """The sliding windows for a per-minute budget.

    Besides the minute window, a per-second window of rpm/60 keeps a large budget (6,000/min)
    from being spent in one burst, which is how paid tiers want it ("under 100 requests/s").
    `window_seconds` is a minute for every real tier; the tests shrink it (with the simulator's
    own window) so a budget's arithmetic is exercised in seconds, not minutes; the burst window
    shrinks with it (a sixtieth of the window).
    """
    if requests_per_minute < 1:
        raise ValueError(f"requests_per_minute must be >= 1, got {requests_per_minute}")
    if window_seconds <= 0:
        raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
    window_ms = round(window_seconds * 1000)
    per_second = max(1, math.ceil(requests_per_minute / 60))
    rates = [Rate(requests_per_minute, window_ms)]
    if per_second < requests_per_minute:
        rates.insert(0, Rate(per_second, max(1, window_ms // 60)))
    return rates


def budget_name(api_key: str, base_url: str) -> str:
    """A stable bucket name per (key, API root) that does not reveal the key."""
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()[:20]
    return f"polygon_{digest}"


class LocalRateBudget:
    """A per-process sliding-window budget (thread safe)."""

    def __init__(self, requests_per_minute: int, *, window_seconds: float = 60.0) -> None:
        self.requests_per_minute = requests_per_minute
        self.window_seconds = window_seconds
        rates = budget_rates(requests_per_minute, window_seconds)
        self._limiter = Limiter(InMemoryBucket(rates), buffer_ms=5)

    def acquire(self) -> None:
        """Block until a request may be sent."""
        self._limiter.try_acquire("polygon", blocking=True)

    def close(self) -> None:
        """Nothing to release."""


class PostgresRateBudget:
    """A budget shared through a Postgres table by every process using the same key."""

    _lock = threading.Lock()

    def __init__(
        self,
        requests_per_minute: int,
        *,
        database_url: str,
        name: str,
        window_seconds: float = 60.0,
    ) -> None:
        from psycopg_pool import ConnectionPool
        from pyrate_limiter import PostgresBucket

        self.requests_per_minute = requests_per_minute
        self.window_seconds = window_seconds
        # Each bucket operation runs in one pooled-connection transaction: its table lock makes
        # check-and-record atomic and is released at the commit when the connection returns.
        self._pool = ConnectionPool(
            database_url,
            min_size=1,
            max_size=4,
            open=True,
            kwargs={"options": "-c search_path=marketdata,public"},
        )
        self._bucket = PostgresBucket(
            self._pool, name, budget_rates(requests_per_minute, window_seconds)
        )
        self._limiter = Limiter(self._bucket, buffer_ms=20)

    def acquire(self) -> None:
        """Block until a request may be sent, as seen by every process sharing the table."""
        self._limiter.try_acquire("polygon", blocking=True)

    def close(self) -> None:
        """Close the connection pool."""
        for bucket in self._limiter.buckets():
            self._limiter.dispose(bucket)
        self._pool.close()
