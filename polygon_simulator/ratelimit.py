"""The simulator's server-side rate limit: N requests in any rolling 60 seconds.

Polygon's free tier allows 5 requests per minute and answers the excess with 429. Only requests
that were let through take a slot: a refused request does not push the window further out, so
the `Retry-After` we send is exactly when a well-behaved client's next request will succeed.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque

WINDOW_SECONDS = 60.0


class RollingWindowLimiter:
    """At most `limit` acquisitions in any rolling `window` seconds (monotonic clock)."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        """Create an empty limiter; the limit is passed to each `acquire` so it can change live."""
        self.window = window
        self._lock = threading.Lock()
        self._accepted: deque[float] = deque()

    def acquire(self, limit: int | None, now: float | None = None) -> float | None:
        """Take a slot and return None, or return the seconds until one frees (nothing taken).

        `limit=None` disables the limit (the request is still not recorded).
        """
        if limit is None:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._accepted and self._accepted[0] <= now - self.window:
                self._accepted.popleft()
            if len(self._accepted) < limit:
                self._accepted.append(now)
                return None
            if limit <= 0:
                return self.window
            # The slot that frees first belongs to the request `limit` places from the newest.
            oldest = self._accepted[len(self._accepted) - limit]
            return max(oldest + self.window - now, 0.0)

    def reset(self) -> None:
        """Forget every recorded request."""
        with self._lock:
            self._accepted.clear()


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds for `Retry-After`, rounded up and at least 1 (HTTP allows only integers)."""
    return str(max(1, math.ceil(wait_seconds)))
