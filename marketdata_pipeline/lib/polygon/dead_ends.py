"""Dead ends of the API: answers after which a client sends nothing more.

Two answers hold for the whole client (one run), because no retry and no other request can fix
them: a refused key (HTTP 401) and a refused connection (nothing listens at the base URL, after
the transport's quick retries). The first one met is remembered and reported once, in one line
naming the URL (`report`: the resource tags the run with it); every later request raises the
same kind of error without being sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from marketdata_pipeline.lib.polygon.errors import (
    PolygonAuthError,
    PolygonError,
    PolygonUnreachableError,
    redact,
)
from marketdata_pipeline.lib.settings import redact_url


class DeadEnds:
    """The dead end one client met, if any (thread-safe: the first one wins)."""

    def __init__(self, base_url: str, api_key: str, report: Callable[[str], None]) -> None:
        """Watch the client of `base_url`; `report(line)` is called once, at the first dead
        end, with the key redacted."""
        self._url = redact_url(base_url)
        self._api_key = api_key
        self._report = report
        self._met: PolygonError | None = None
        self._lock = threading.Lock()

    def refuse_if_met(self, what: str) -> None:
        """Raise for `what` without sending it when a dead end was met."""
        met = self._met
        if met is not None:
            raise type(met)(
                f"{what} not requested: {met}", request=what, status_code=met.status_code
            )

    def key_refused(self, exc: PolygonAuthError) -> None:
        """The API refused the key (401): nothing more is sent with it."""
        refusal = f"HTTP 401 {exc.api_message} (check POLYGON_API_KEY)"
        self._meet(
            PolygonAuthError(
                f"the API key was refused on an earlier request ({refusal})",
                status_code=401,
                api_message=exc.api_message,
            ),
            f"the Polygon API at {self._url} refused the key: {refusal}; nothing more was "
            "requested",
        )

    def connection_refused(self) -> str:
        """Nothing listens at the base URL: nothing more is sent there. Returns the URL
        (redacted) for the failing request's own message."""
        self._meet(
            PolygonUnreachableError(
                f"nothing listens at {self._url} (connection refused on an earlier request)"
            ),
            f"cannot connect to the Polygon API at {self._url}: connection refused (nothing "
            "listens there: check POLYGON_BASE_URL)",
        )
        return self._url

    def _meet(self, error: PolygonError, line: str) -> None:
        with self._lock:
            if self._met is not None:
                return
            self._met = error
        self._report(redact(line, self._api_key))
