"""Splits and dividends of the whole US stock market from Polygon's reference endpoints.

We query `/stocks/v1/splits` and `/stocks/v1/dividends`, the vendor's current endpoints (the
`/v3/reference/...` ones are deprecated). They serve 5,000 records a page instead of 1,000,
say whether a split is forward, reverse or a stock dividend (`adjustment_type`), and carry the
vendor's cumulative `historical_adjustment_factor`, which we keep as a cross-check only (it
changes whenever a later split executes, so the events themselves are the truth).

One query per refresh covers the whole market for a date window (execution date for splits,
ex-dividend date for dividends), following `next_url` cursors: a few pages, never one request
per ticker. A dividend history can also be asked for a list of tickers in one query
(`ticker.any_of`). Requests go through `PolygonClient`, so they share its retries, budget
and guards.

A record with an impossible value (a non-positive ratio, a missing date, ...) is left out and
reported with the reason, so one bad vendor record never blocks the rest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from marketdata_pipeline.lib.candles.corporate_actions import DIVIDEND_SCHEMA, SPLIT_SCHEMA
from marketdata_pipeline.lib.polygon.client import PolygonClient

SPLITS_PATH = "/stocks/v1/splits"
DIVIDENDS_PATH = "/stocks/v1/dividends"
#: The endpoints' largest page.
PAGE_LIMIT = 5000


@dataclass
class EventFetch:
    """Events of one refresh: the valid ones as a frame, and why the others were left out."""

    frame: pl.DataFrame
    pages: int = 0
    rejected: list[str] = field(default_factory=list)


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_split(record: Any, *, source: str, fetched_at: dt.datetime) -> dict[str, Any] | str:
    """One split record as a row of SPLIT_SCHEMA, or the reason it is unusable."""
    if not isinstance(record, dict):
        return f"record is {type(record).__name__}, expected an object"
    ticker = _text(record.get("ticker"))
    day = _date(record.get("execution_date"))
    split_from, split_to = _number(record.get("split_from")), _number(record.get("split_to"))
    label = f"split {ticker or record.get('ticker')!r} {record.get('execution_date')!r}"
    if ticker is None or day is None:
        return f"{label}: ticker and execution_date (YYYY-MM-DD) are required"
    if split_from is None or split_to is None or split_from <= 0 or split_to <= 0:
        return (
            f"{label}: split_from {record.get('split_from')!r} and split_to "
            f"{record.get('split_to')!r} must be positive numbers"
        )
    return {
        "symbol": ticker,
        "execution_date": day,
        "split_from": split_from,
        "split_to": split_to,
        "adjustment_type": _text(record.get("adjustment_type")),
        "vendor_id": _text(record.get("id")),
        "historical_adjustment_factor": _number(record.get("historical_adjustment_factor")),
        "source": source,
        "fetched_at": fetched_at,
    }


def parse_dividend(record: Any, *, source: str, fetched_at: dt.datetime) -> dict[str, Any] | str:
    """One dividend record as a row of DIVIDEND_SCHEMA, or the reason it is unusable."""
    if not isinstance(record, dict):
        return f"record is {type(record).__name__}, expected an object"
    ticker = _text(record.get("ticker"))
    ex_day = _date(record.get("ex_dividend_date"))
    cash = _number(record.get("cash_amount"))
    label = f"dividend {ticker or record.get('ticker')!r} {record.get('ex_dividend_date')!r}"
    if ticker is None or ex_day is None:
        return f"{label}: ticker and ex_dividend_date (YYYY-MM-DD) are required"
    if cash is None or cash < 0:
        return f"{label}: cash_amount {record.get('cash_amount')!r} must be a number >= 0"
    kind = _text(record.get("distribution_type")) or _text(record.get("dividend_type"))
    vendor_id = _text(record.get("id"))
    if vendor_id is None:
        # Keyed like the vendor's own id would be: one row per distribution, stable across runs.
        digest = hashlib.sha256(f"{ticker}|{ex_day}|{cash!r}|{kind}".encode()).hexdigest()[:32]
        vendor_id = f"derived:{digest}"
    frequency = record.get("frequency")
    return {
        "symbol": ticker,
        "ex_dividend_date": ex_day,
        "dividend_id": vendor_id,
        "cash_amount": cash,
        "currency": _text(record.get("currency")),
        "distribution_type": kind,
        "frequency": frequency if isinstance(frequency, int) and frequency >= 0 else None,
        "declaration_date": _date(record.get("declaration_date")),
        "record_date": _date(record.get("record_date")),
        "pay_date": _date(record.get("pay_date")),
        "split_adjusted_cash_amount": _number(record.get("split_adjusted_cash_amount")),
        "historical_adjustment_factor": _number(record.get("historical_adjustment_factor")),
        "source": source,
        "fetched_at": fetched_at,
    }


def _fetch(
    client: PolygonClient,
    *,
    path: str,
    date_field: str,
    start: dt.date,
    end: dt.date,
    kind: str,
    parse: Any,
    schema: dict[str, pl.DataType],
    key: list[str],
    page_limit: int,
    tickers: Sequence[str] | None = None,
) -> EventFetch:
    if end < start:
        raise ValueError(f"{kind} window {start}..{end}: end is before start")
    params = {
        f"{date_field}.gte": start.isoformat(),
        f"{date_field}.lte": end.isoformat(),
        "limit": str(page_limit),
        "sort": f"{date_field}.asc",
    }
    what = f"{kind} {start}..{end}"
    if tickers:
        params["ticker.any_of"] = ",".join(tickers)
        what += f" of {len(tickers)} tickers"
    fetched_at = dt.datetime.now(dt.UTC)
    # Who answered is known once the pages arrived: the records are labelled after the loop.
    source = ""
    result = EventFetch(pl.DataFrame(schema=schema))
    rows: list[dict[str, Any]] = []
    seen: set[tuple[Any, ...]] = set()
    for page in client.json_pages(path, params, kind=kind, what=what):
        result.pages += 1
        for record in page["results"]:
            row = parse(record, source=source, fetched_at=fetched_at)
            if isinstance(row, str):
                result.rejected.append(row)
                continue
            identity = tuple(row[k] for k in key)
            if identity in seen:
                result.rejected.append(f"duplicate {kind} record {identity}: first one kept")
                continue
            seen.add(identity)
            rows.append(row)
    label = f"{client.reference_family()}:{path.lstrip('/')}"
    for row in rows:
        row["source"] = label
    result.frame = pl.DataFrame(rows, schema=schema, orient="row") if rows else result.frame
    return result


def fetch_splits(
    client: PolygonClient, start: dt.date, end: dt.date, *, page_limit: int = PAGE_LIMIT
) -> EventFetch:
    """Every stock split with an execution date in `start`..`end` (inclusive), whole market."""
    return _fetch(
        client,
        path=SPLITS_PATH,
        date_field="execution_date",
        start=start,
        end=end,
        kind="splits",
        parse=parse_split,
        schema=SPLIT_SCHEMA,
        key=["symbol", "execution_date"],
        page_limit=page_limit,
    )


def fetch_dividends(
    client: PolygonClient,
    start: dt.date,
    end: dt.date,
    *,
    tickers: Sequence[str] | None = None,
    page_limit: int = PAGE_LIMIT,
) -> EventFetch:
    """Every cash dividend with an ex-dividend date in `start`..`end` (inclusive).

    The whole market, or only `tickers` (one query with `ticker.any_of`, not one per ticker).
    """
    return _fetch(
        client,
        path=DIVIDENDS_PATH,
        date_field="ex_dividend_date",
        start=start,
        end=end,
        kind="dividends",
        parse=parse_dividend,
        schema=DIVIDEND_SCHEMA,
        key=["symbol", "ex_dividend_date", "dividend_id"],
        page_limit=page_limit,
        tickers=tickers,
    )
