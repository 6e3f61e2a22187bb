"""Bringing stored split-adjusted history in line with the splits the store knows.

The vendor's adjusted bars are adjusted as of the moment they are fetched, so a split learned
later leaves every stored bar before its execution date on the old share basis. For each active
tracked stock with such stale bars, `bring_history_current` re-fetches the stale span with one
range request and replaces it in one transaction through the candle IO manager: the stored
history then equals what the vendor's adjusted bars are now, exactly (re-scaling stored prices
ourselves would drift from the vendor's own rounding). Bars on or after the execution date, and
other symbols, are untouched.

Which bars are stale is derived from the data (`stale_split_history`): a bar fetched before a
split took effect. A repaired bar is fresh, so calling this again finds nothing and costs no
request; a symbol whose refetch failed keeps its rows and is retried on the next call.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketdata_pipeline.lib.candles.accumulator import CandleAccumulator
from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.errors import PolygonError
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.corporate_actions import (
    StaleHistory,
    mark_splits_applied,
    stale_split_history,
)
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.postgres.store import stored_counts
from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
from marketdata_pipeline.lib.symbols import AssetClass, Symbol

TABLE = "stock_daily_candles"


@dataclass
class HistoryReport:
    """What `bring_history_current` did: symbols repaired (with details), failed, requests."""

    checked: int = 0
    repaired: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    splits_applied: int = 0
    requests: int = 0

    def as_metadata(self) -> dict[str, Any]:
        """A JSON-friendly summary for run metadata."""
        return {
            "symbols_checked": self.checked,
            "symbols_repaired": len(self.repaired),
            "symbols_failed": len(self.failed),
            "splits_applied": self.splits_applied,
            "requests": self.requests,
        }


def bring_history_current(
    polygon: PolygonResource,
    database: PostgresDatabase,
    store: PostgresCandleIOManager,
    *,
    symbols: list[str] | None = None,
    log: logging.Logger | Any | None = None,
) -> HistoryReport:
    """Re-fetch and replace every stored span of `symbols` that misses a known split.

    `symbols` defaults to the active tracked stocks. Cost: one range request per symbol with
    stale bars, none otherwise. Call it after new splits were stored (the `stock_splits` asset)
    and after candles were written, e.g. from an asset downstream of both. Each repaired span
    is written by `store`, the candle IO manager (the one persistence step of every slice).
    """
    log = log or logging.getLogger(__name__)
    report = HistoryReport()
    with database.connect() as conn:
        if symbols is None:
            tracked, _invalid = active_symbols(conn, AssetClass.STOCK)
            symbols = [s.symbol for s in tracked]
        stale = stale_split_history(conn, symbols) if symbols else []
    report.checked = len(symbols)
    client = polygon.get_client() if stale else None
    before = client.stats.attempts if client is not None else 0
    for item in stale:
        splits = ", ".join(f"{d} {f:g}->{t:g}" for d, f, t in item.splits)
        what = f"{item.symbol} {item.first_day}..{item.last_day}"
        log.info(f"{what}: {item.rows} stored bars predate split(s) {splits}; re-fetching")
        try:
            with _fresh_pages(client):
                report.repaired[item.symbol] = detail = _repair(database, store, item, client)
            log.info(
                f"{what}: replaced {detail['rows_replaced']} rows with the vendor's "
                f"{detail['rows_inserted']} adjusted bars"
            )
        except (PolygonError, _Refused) as exc:
            report.failed[item.symbol] = f"{what}: {exc} (stored rows kept; retried next run)"
            log.error(report.failed[item.symbol])
    if client is not None:
        report.requests = client.stats.attempts - before
    if symbols:
        with database.connect() as conn:
            report.splits_applied = mark_splits_applied(conn, symbols)
    return report


class _Refused(Exception):
    """The vendor's answer for a repair cannot replace the stored rows."""


@contextlib.contextmanager
def _fresh_pages(client: PolygonClient) -> Iterator[None]:
    """Requests inside go to the vendor, never to the page cache, and their pages are
    forgotten at the end.

    A repair must see the vendor's bars now: a page kept in the cache (by a killed run, or an
    earlier repair of the same span) may predate the split, and reading it back would store
    the old share basis as if just fetched. Once the repair is over its pages are of no use:
    committed, the rows are in the store; refused, the next repair asks again anyway.
    """
    cache = client.page_cache
    if cache is None:
        yield
        return
    with cache.collect(refresh=True) as keys:
        try:
            yield
        finally:
            cache.forget(keys)


def _repair(
    database: PostgresDatabase,
    store: PostgresCandleIOManager,
    item: StaleHistory,
    client: PolygonClient,
) -> dict[str, Any]:
    """Re-fetch one symbol's stale span and replace it in one transaction."""
    symbol = Symbol(item.symbol, AssetClass.STOCK)
    window = CandleWindow(item.first_day, item.last_day)
    rows = CandleAccumulator(TABLE, AssetClass.STOCK)
    report = rows.add(
        client.fetch_range(symbol, item.first_day, item.last_day),
        start=window.first,
        end=window.last,
        symbols=[symbol.symbol],
    )
    if not report.passed:
        raise _Refused("the vendor's bars are malformed: " + "; ".join(report.problems))

    def counts(symbols: Sequence[str]) -> Mapping[str, int]:
        with database.connect() as conn:
            return stored_counts(conn, TABLE, window, symbols)

    if rows.empty_answers(window, counts) or rows.rows == 0:
        # An empty answer must not delete good history (transient empty results happen).
        raise _Refused("the vendor answered with no usable bars")
    # The same write as the candle assets': the store's source claim checked (a repair from
    # the other kind of API is refused) and the symbol's status recorded, in one transaction.
    batch = CandleBatch(
        asset_class=AssetClass.STOCK,
        window=window,
        symbols=(symbol.symbol,),
        source_family=client.answered_family(),
        candles=rows.candles,
        rejected=rows.rejected(),
    )
    written = store.store(TABLE, batch).counts
    return {
        "window": f"{item.first_day}..{item.last_day}",
        "stale_rows": item.rows,
        "rows_replaced": written["deleted"],
        "rows_inserted": written["inserted"],
        "rows_quarantined": written["quarantined"],
        "splits": [f"{d} {f:g}->{t:g}" for d, f, t in item.splits],
    }
