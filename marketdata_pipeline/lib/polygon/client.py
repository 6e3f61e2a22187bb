"""`PolygonClient`: the one client a run uses, assembled as the official Polygon client is.

- `transport.py`: httpx, the request budget, dead ends, the page cache around page fetching and
  JSON paging (`json_pages`); its retry rules in `retries.py`, what each failure means in
  `errors.py`, who answered in `provenance.py`, `next_url` guards in `paging.py`;
- `aggregates.py`: the range and grouped-daily endpoints, as normalised frames;
- `reference.py` and `corporate_actions.py`: the reference endpoints (tickers, ticker events,
  splits and dividends), as functions over a client's `json_pages`.
"""

from __future__ import annotations

from marketdata_pipeline.lib.polygon.aggregates import AggregatesClient

__all__ = ["PolygonClient"]


class PolygonClient(AggregatesClient):
    """Polygon aggregates and reference data over HTTP: retries, a budget, paging guards."""

    def __enter__(self) -> PolygonClient:
        return self
