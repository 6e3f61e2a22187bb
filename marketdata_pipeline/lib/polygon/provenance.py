"""Who answered a run's pages: the vendor (`polygon`) or a simulator (`simulator`).

A simulator says so in every answer (`SIMULATOR_HEADER`); the command line that starts the local
one configures the client as `simulator` outright. Every page is marked with who answered it, the
page cache keeps that in its key, and a run's rows are stored as one family only.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import httpx

from marketdata_pipeline.lib.candles.batch import SourceFamily, check_source_family
from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError
from marketdata_pipeline.lib.polygon.payload import Page

#: The header by which a simulator says so in every answer (`polygon_simulator` sends it unless
#: told to pose as the real API): its rows are then labelled `simulator:`, not `polygon:`.
SIMULATOR_HEADER = "X-Simulated"
# A simulator's pages are cached under this extra part of their key, so a page read back from
# the cache still says who answered it (the body itself has the vendor's shape).
_SIMULATED_CACHE_PART = {"_answered_by": "simulator"}


def page_cache_params(params: dict[str, str] | None, simulated: bool) -> dict[str, str] | None:
    """The query a page is cached under: the request's, plus who answered when a simulator
    did (the page cache keys pages by path and query)."""
    return {**(params or {}), **_SIMULATED_CACHE_PART} if simulated else params


def said_simulator(response: httpx.Response) -> bool:
    """True when the answering server said it is a simulator (`SIMULATOR_HEADER`)."""
    return response.headers.get(SIMULATOR_HEADER, "").strip().lower() in ("true", "1")


class AnsweredFamilies:
    """The source families the pages of one client's run were answered as (thread-safe)."""

    def __init__(self, source: str) -> None:
        # The configured provenance: "simulator" when the command line started the local one
        # (every row is then simulated), else "polygon" unless a page's answer says otherwise.
        self.source = check_source_family(source, "PolygonClient source")
        self._seen: set[SourceFamily] = set()
        # Reference pages (splits, dividends, tickers) carry no candle rows: their answers are
        # noted apart, so they label their own records without claiming anything.
        self._reference_simulated = False
        self._lock = threading.Lock()

    def family_of(self, page: Page) -> SourceFamily:
        """The source family of `page`'s rows: `simulator` when configured for the local
        simulator or the server said so when it answered the page, else `polygon`."""
        return "simulator" if self.source == "simulator" or page.simulated else "polygon"

    def mark(self, page: Any, simulated: bool) -> Any:
        """`page` marked with who answered it; the family is noted for `answered`."""
        if not isinstance(page, Page):
            if simulated:  # reference data: no candle rows, but its records say who answered
                with self._lock:
                    self._reference_simulated = True
            return page
        if simulated:
            page = dataclasses.replace(page, simulated=True)
        with self._lock:
            self._seen.add(self.family_of(page))
        return page

    def reference_family(self) -> SourceFamily:
        """The source family of the reference records fetched so far: `simulator` when
        configured for the local simulator or a reference page's answer said so."""
        with self._lock:
            simulated = self._reference_simulated
        return "simulator" if self.source == "simulator" or simulated else "polygon"

    def answered(self, base_url: str) -> SourceFamily | None:
        """The source family of every page marked (`PolygonClient.answered_family`)."""
        with self._lock:
            seen = sorted(self._seen)
        if len(seen) > 1:
            raise PolygonPayloadError(
                f"the API at {base_url} answered this run both as a simulator and as "
                "Polygon (the server changed, or cached pages of another server were read): "
                "nothing of the run is stored; rerun it"
            )
        if seen:
            return seen[0]
        return "simulator" if self.source == "simulator" else None
