"""Response bodies of the reference endpoints (splits, dividends, tickers), in the real shapes.

The aggregates' bodies (`RangeBody`, `GroupedBody`) live in pages.py with their page cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from polygon_simulator.pages import dumps


@dataclass
class EventsBody:
    """A splits/dividends response: `results`, `status`, `request_id`, optional `next_url`."""

    results: list[dict[str, Any]]
    request_id: str
    next_url: str | None

    def as_dict(self) -> dict[str, Any]:
        """The body as the real API sends it (key order of the samples)."""
        body: dict[str, Any] = {}
        if self.next_url is not None:
            body["next_url"] = self.next_url
        body["request_id"] = self.request_id
        body["results"] = self.results
        body["status"] = "OK"
        return body

    def to_bytes(self) -> bytes:
        """The body as compact JSON."""
        return dumps(self.as_dict()).encode()


@dataclass
class ReferenceBody:
    """A ticker-reference response: `results` (a list or one object), `status`, `request_id`,
    `count` for lists, optional `next_url` (key order of the client's mocks)."""

    results: Any
    request_id: str
    next_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The body as the real API sends it."""
        body: dict[str, Any] = {"results": self.results, "status": "OK"}
        body["request_id"] = self.request_id
        if isinstance(self.results, list):
            body["count"] = len(self.results)
        if self.next_url is not None:
            body["next_url"] = self.next_url
        return body

    def to_bytes(self) -> bytes:
        """The body as compact JSON."""
        return dumps(self.as_dict()).encode()
