"""When the transport tries a request again, and how long it waits first (tenacity).

Transient failures (`errors.TransientError`) are retried with exponential backoff and jitter,
honouring `Retry-After` (capped), and never sooner than one budget slot after a 429 without one.
A refused connection is retried only twice within a second: a server restarting is back by then,
a wrong URL never is. `RequestStats` counts what was actually sent.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field

from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_exponential_jitter

from marketdata_pipeline.lib.polygon.errors import TransientError, redact
from marketdata_pipeline.lib.polygon.rate_budget import RateBudget

log = logging.getLogger(__name__)

#: Attempts at a request whose connection is refused, and the wait before the n-th retry
#: (0.25 s, 0.5 s): a server restarting is back within that, a wrong URL never is.
REFUSED_ATTEMPTS = 3
REFUSED_BACKOFF_SECONDS = 0.25


@dataclass
class RequestStats:
    """Counters of what a client actually sent, for run metadata, logs and benchmarks."""

    attempts: int = 0
    retries: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_status: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, kind: str, status: str) -> None:
        """Count one attempt of `kind` ("range"/"grouped") that ended with `status`."""
        with self._lock:
            self.attempts += 1
            self.by_kind[kind] += 1
            self.by_status[status] += 1

    def record_retry(self) -> None:
        """Count one retry (an attempt after a transient failure)."""
        with self._lock:
            self.retries += 1

    def as_metadata(self) -> dict[str, object]:
        """A JSON-friendly summary."""
        with self._lock:
            return {
                "requests": self.attempts,
                "retries": self.retries,
                "by_kind": dict(self.by_kind),
                "by_status": dict(self.by_status),
            }


@dataclass
class RetryPolicy:
    """The retry rules of one client; `retrying()` is the tenacity loop for one request."""

    budget: RateBudget
    stats: RequestStats
    # Only to scrub the key from the retry's log line (the messages never hold it anyway).
    api_key: str = field(repr=False)
    max_attempts: int = 8
    backoff_initial_seconds: float = 1.0
    backoff_max_seconds: float = 60.0
    max_retry_after_seconds: float = 300.0

    def attempts_for(self, exc: BaseException | None) -> int:
        """Attempts allowed for a request whose last attempt failed with `exc`."""
        refused = isinstance(exc, TransientError) and exc.refused
        return REFUSED_ATTEMPTS if refused else self.max_attempts

    def retrying(self) -> Retrying:
        """A fresh tenacity loop: retries `TransientError` only, re-raising the last one."""
        return Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=self._stop,
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _stop(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome else None
        return state.attempt_number >= self.attempts_for(exc)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientError) and exc.refused:
            return REFUSED_BACKOFF_SECONDS * 2 ** (state.attempt_number - 1)
        backoff = wait_exponential_jitter(
            initial=self.backoff_initial_seconds, max=self.backoff_max_seconds
        )(state)
        if isinstance(exc, TransientError):
            if exc.retry_after is not None:
                return min(exc.retry_after, self.max_retry_after_seconds)
            if exc.status_code == 429:
                # Without Retry-After, wait at least one budget slot: retrying sooner is
                # guaranteed to be refused again and spends quota.
                return max(backoff, self.budget.window_seconds / self.budget.requests_per_minute)
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.record_retry()
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s; retry %d/%d in %.1fs",
            redact(str(exc), self.api_key),
            state.attempt_number,
            self.attempts_for(exc) - 1,
            delay,
        )
