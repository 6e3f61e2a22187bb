"""The aggregates endpoints: daily bars of one ticker over a range, and of a whole market by day.

`range_pages` follows a range's pages (`paging.py`); `fetch_range` and `grouped_day` turn pages
into normalised frames (candle schema plus helper columns), each row labelled with who answered
(`provenance.py`). A range whose end is before its start is never sent (the API answers 400).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from typing import Any

import polars as pl

from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError, PolygonRequestError
from marketdata_pipeline.lib.polygon.paging import follow_pages
from marketdata_pipeline.lib.polygon.payload import Page, normalise_bars
from marketdata_pipeline.lib.polygon.transport import PolygonTransport
from marketdata_pipeline.lib.symbols import CRYPTO_PREFIX, AssetClass, Symbol

#: Largest page the aggregates endpoint serves (in base bars): ~198 years of daily bars.
MAX_LIMIT = 50_000


class AggregatesClient(PolygonTransport):
    """Daily aggregates over `PolygonTransport`: adjusted or not, pages of `page_limit` bars."""

    def __init__(self, *, adjusted: bool = True, page_limit: int = MAX_LIMIT, **transport: Any):
        if not 1 <= page_limit <= MAX_LIMIT:
            raise ValueError(f"page_limit must be between 1 and {MAX_LIMIT}, got {page_limit}")
        super().__init__(**transport)
        self.adjusted = adjusted
        self.page_limit = page_limit

    def range_pages(self, symbol: Symbol, start: dt.date, end: dt.date) -> Iterator[Page]:
        """Every page of daily bars for `symbol` from `start` to `end` (inclusive)."""
        what = f"{symbol.symbol} ({symbol.asset_class}) {start}..{end}"
        if end < start:
            # The API answers 400 for `to` before `from`: never spend a request on it.
            raise PolygonRequestError(
                f"refusing to request {what}: the end {end} is before the start {start}",
                request=what,
            )
        path = f"/v2/aggs/ticker/{symbol.api_ticker}/range/1/day/{start}/{end}"
        params: dict[str, str] = {
            "adjusted": "true" if self.adjusted else "false",
            "sort": "asc",
            "limit": str(self.page_limit),
        }

        def get(path: str, params: dict[str, str]) -> Page:
            page = self.get_page(path, params, kind="range", what=what, window=(start, end))
            if page.ticker is not None and page.ticker != symbol.api_ticker:
                raise PolygonPayloadError(
                    f"Polygon response for {what} is for ticker {page.ticker!r}",
                    request=what,
                )
            return page

        return follow_pages(
            path,
            params,
            what=what,
            prefix="/v2/aggs/",
            max_pages=self.max_pages,
            get=get,
            next_url_of=lambda page: page.next_url,
        )

    def fetch_range(self, symbol: Symbol, start: dt.date, end: dt.date) -> pl.DataFrame:
        """Normalised daily bars (candle schema plus helper columns) for one symbol."""
        fetched_at = dt.datetime.now(dt.UTC)
        frames = [
            normalise_bars(
                page.bars,
                asset_class=symbol.asset_class,
                endpoint="range",
                symbol=symbol.symbol,
                adjusted=page.adjusted if page.adjusted is not None else self.adjusted,
                provisional=page.provisional,
                fetched_at=page.fetched_at or fetched_at,
                source=f"{self.family_of(page)}:range",
            )
            for page in self.range_pages(symbol, start, end)
        ]
        return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]

    def fetch_grouped(
        self, asset_class: AssetClass, day: dt.date, symbols: Collection[str] | None = None
    ) -> pl.DataFrame:
        """Normalised bars of the whole market for one day (grouped daily endpoint).

        With `symbols` (canonical names), only their bars: the page is filtered before it is
        normalised, so a run asking for part of a 10,000-ticker market pays for its part.
        """
        return self.grouped_day(asset_class, day, symbols)[0]

    def grouped_day(
        self, asset_class: AssetClass, day: dt.date, symbols: Collection[str] | None = None
    ) -> tuple[pl.DataFrame, int]:
        """`fetch_grouped`'s bars, and how many bars the page carried before the filter."""
        if asset_class is AssetClass.STOCK:
            path = f"/v2/aggs/grouped/locale/us/market/stocks/{day}"
        else:
            path = f"/v2/aggs/grouped/locale/global/market/crypto/{day}"
        what = f"grouped daily {asset_class} {day}"
        params = {"adjusted": "true" if self.adjusted else "false"}
        fetched_at = dt.datetime.now(dt.UTC)
        page = self.get_page(path, params, kind="grouped", what=what, window=(day, day))
        bars = page.bars
        if symbols is not None:
            # The same name `normalise_bars` gives a bar (crypto tickers lose their `X:`).
            ticker = pl.col("T")
            if asset_class is AssetClass.CRYPTO:
                ticker = ticker.str.strip_prefix(CRYPTO_PREFIX)
            bars = bars.filter(ticker.is_in(list(symbols)))
        frame = normalise_bars(
            bars,
            asset_class=asset_class,
            endpoint="grouped",
            adjusted=page.adjusted if page.adjusted is not None else self.adjusted,
            provisional=page.provisional,
            fetched_at=page.fetched_at or fetched_at,
            source=f"{self.family_of(page)}:grouped",
        )
        return frame, page.bars.height
