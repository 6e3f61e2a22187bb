"""Polygon JSON pages to polars frames, without a Python object per field per bar.

`parse_page` lets polars' JSON reader turn a whole response body into columns (about 1.7 M bars/s
on one core here, against about 0.5 M/s through `json.loads`), then checks the envelope: status,
`resultsCount` against the bars actually present, the ticker. `normalise_bars` maps vendor fields
to the shared candle schema and derives each bar's trading day in its market's time zone.
`parse_json_page` decodes a reference-data page (tickers, events, corporate actions).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS, UTC_DATETIME
from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError
from marketdata_pipeline.lib.symbols import AssetClass

Endpoint = Literal["range", "grouped"]

ACCEPTED_STATUSES = frozenset({"OK", "DELAYED"})
MS_PER_DAY = 86_400_000

# `t` is read as a float and checked for integrality: reading it as Int64 would silently
# truncate a fractional timestamp. Float64 holds every ms timestamp up to year 285,000 exactly.
_BAR_STRUCT = pl.Struct(
    {
        "T": pl.String,
        "o": pl.Float64,
        "h": pl.Float64,
        "l": pl.Float64,
        "c": pl.Float64,
        "v": pl.Float64,
        "vw": pl.Float64,
        "t": pl.Float64,
        "n": pl.Float64,
    }
)
_PAGE_SCHEMA = {
    "status": pl.String,
    "ticker": pl.String,
    "resultsCount": pl.Int64,
    "adjusted": pl.Boolean,
    "next_url": pl.String,
    "results": pl.List(_BAR_STRUCT),
}


@dataclass(frozen=True)
class Page:
    """One decoded response page: envelope fields plus the raw bars as columns."""

    status: str
    ticker: str | None
    results_count: int | None
    adjusted: bool | None
    next_url: str | None
    bars: pl.DataFrame
    # The server said it is a simulator when it answered this page (a response header; the
    # body keeps the real shape). Set by the client, which saw the answer.
    simulated: bool = False
    # When the vendor sent it, for a page read back from the page cache (None: just now). Its
    # bars carry this as `fetched_at`, so a page that predates a split is seen to.
    fetched_at: dt.datetime | None = None

    @property
    def provisional(self) -> bool:
        """True when the API marked the data DELAYED (not final yet: re-fetch later)."""
        return self.status == "DELAYED"


def _describe_json_problem(body: bytes) -> str:
    """Explain why a body is not a valid page, using the slow path only when already failing."""
    if not body:
        return "empty body"
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        head = body[:60].decode("utf-8", "replace")
        return f"not valid JSON ({exc.__class__.__name__}: {exc}); body starts {head!r}"
    if not isinstance(doc, dict):
        return f"top level is {type(doc).__name__}, expected an object"
    results = doc.get("results")
    if results is not None and not isinstance(results, list):
        return f"'results' is {type(results).__name__}, expected a list"
    for i, bar in enumerate(results or []):
        if not isinstance(bar, dict):
            return f"results[{i}] is {type(bar).__name__}, expected an object"
        for key in ("o", "h", "l", "c", "v", "vw", "t", "n"):
            value = bar.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                return f"results[{i}].{key} is {value!r}, expected a number"
    return "unexpected field types"


def parse_page(body: bytes, *, request: str) -> Page:
    """Decode one aggregates response body (range or grouped) into a `Page`.

    Raises `PolygonPayloadError` naming `request` when the body is not JSON, has the wrong shape,
    a status other than OK/DELAYED, or a `resultsCount` that disagrees with its bars.
    """
    try:
        frame = pl.read_json(io.BytesIO(body), schema=_PAGE_SCHEMA)
    except Exception as exc:  # polars raises several error types for malformed input
        problem = _describe_json_problem(body)
        raise PolygonPayloadError(
            f"Polygon response for {request} is malformed: {problem}", request=request
        ) from exc
    # polars also reads a top-level array of objects: `[{"status": "OK"}]` would otherwise
    # pass as an empty page and replace the stored slice with nothing.
    if frame.height != 1 or not body.lstrip().startswith(b"{"):
        raise PolygonPayloadError(
            f"Polygon response for {request} is malformed: expected one JSON object",
            request=request,
        )
    # Only the envelope columns: `row(0)` of the whole frame would turn every bar into a
    # Python dict, which more than halves the parsing speed (docs/benchmarks.md).
    status, ticker, results_count, adjusted, next_url = frame.select(pl.exclude("results")).row(0)
    if status not in ACCEPTED_STATUSES:
        raise PolygonPayloadError(
            f"Polygon response for {request} has status {status!r}, expected OK or DELAYED",
            request=request,
        )
    n_bars = frame.select(pl.col("results").list.len()).item()
    if not n_bars:
        bars = pl.DataFrame(schema=dict(_BAR_STRUCT.to_schema()))
    else:
        bars = frame.select(pl.col("results").explode()).unnest("results")
    if results_count is not None and results_count != bars.height:
        raise PolygonPayloadError(
            f"Polygon response for {request} says resultsCount={results_count} "
            f"but carries {bars.height} bars",
            request=request,
        )
    return Page(
        status=status,
        ticker=ticker,
        results_count=results_count,
        adjusted=adjusted,
        next_url=next_url,
        bars=bars,
    )


def normalise_bars(
    bars: pl.DataFrame,
    *,
    asset_class: AssetClass,
    endpoint: Endpoint,
    symbol: str | None = None,
    adjusted: bool = True,
    provisional: bool = False,
    fetched_at: dt.datetime,
    source: str,
) -> pl.DataFrame:
    """Map raw bars to the candle schema (with `vendor_t`), plus the helper column `t_aligned`.

    `symbol` is the canonical symbol for range pages; grouped pages carry it per bar in `T`
    (with the `X:` prefix for crypto, which is stripped; stock tickers keep their case).
    `vendor_t` is the bar's `t` as sent. The trading day follows `DAY_CONVENTIONS`: the date of
    `t` in New York for stocks and in UTC for crypto, which places every convention the vendor
    has used on the right day. `t_aligned` tells whether `t` is one of those conventions' stamps
    (any instant for grouped pages, whose stamp the spec only calls "the end of the window");
    a bar that fits no convention fits no day and is quarantined.
    """
    tz = "America/New_York" if asset_class is AssetClass.STOCK else "UTC"
    if endpoint == "grouped":
        sym = (
            pl.col("T").str.strip_prefix("X:") if asset_class is AssetClass.CRYPTO else pl.col("T")
        )
    else:
        sym = pl.lit(symbol, dtype=pl.String)
    t = pl.col("t")
    t_int = pl.when(t.is_finite() & (t == t.floor()) & (t.abs() < 1e15)).then(t).cast(pl.Int64)
    instant = pl.from_epoch(pl.col("vendor_t"), time_unit="ms").dt.replace_time_zone("UTC")
    frame = bars.with_columns(vendor_t=t_int).with_columns(
        symbol=sym,
        day=instant.dt.convert_time_zone(tz).dt.date(),
        _ny=instant.dt.convert_time_zone("America/New_York"),
    )
    frame = frame.with_columns(
        ts=pl.col("day")
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC"),
    )
    # Grouped bars are stamped at the session close, not the day start: any instant inside
    # the day is acceptable for them, and the day itself was derived from it.
    aligned = _fits_a_day(asset_class) if endpoint == "range" else pl.col("vendor_t").is_not_null()
    return frame.select(
        "symbol",
        "day",
        pl.col("ts").cast(UTC_DATETIME),
        pl.col("o").alias("open"),
        pl.col("h").alias("high"),
        pl.col("l").alias("low"),
        pl.col("c").alias("close"),
        pl.col("v").alias("volume"),
        pl.col("vw").alias("vwap"),
        pl.when(pl.col("n").is_finite() & (pl.col("n") == pl.col("n").floor()))
        .then(pl.col("n"))
        .cast(pl.Int64, strict=False)
        .alias("transactions"),
        pl.lit(adjusted).alias("adjusted"),
        pl.lit(provisional).alias("provisional"),
        pl.lit(source).alias("source"),
        pl.lit(fetched_at, dtype=UTC_DATETIME).alias("fetched_at"),
        "vendor_t",
        aligned.fill_null(False).alias("t_aligned"),
    )


#: Every daily-bar timestamp convention the vendor has used, per market: the day a bar belongs
#: to is the date of `t` in the market's zone (New York for stocks, UTC for crypto).
DAY_CONVENTIONS: dict[AssetClass, tuple[str, ...]] = {
    AssetClass.STOCK: (
        "00:00 New York (range bars: start of the session's day)",
        "16:00 New York (grouped and /prev bars, and older range history: the session close)",
    ),
    AssetClass.CRYPTO: (
        "00:00 UTC (current crypto bars)",
        "00:00 New York, i.e. 04:00/05:00 UTC (2020-era crypto bars)",
    ),
}


def _fits_a_day(asset_class: AssetClass) -> pl.Expr:
    """True when `vendor_t` is the stamp of one of `DAY_CONVENTIONS` for its day."""
    ny = pl.col("_ny")
    ny_midnight = (ny.dt.hour() == 0) & (ny.dt.minute() == 0)
    exact = (ny.dt.second() == 0) & (ny.dt.millisecond() == 0)
    if asset_class is AssetClass.STOCK:
        # Midnight or the 16:00 close, both on the bar's New York date.
        fits = (ny_midnight | ((ny.dt.hour() == 16) & (ny.dt.minute() == 0))) & exact
    else:
        # 00:00 UTC, or New York midnight, which falls on the same UTC date (04:00/05:00Z).
        utc_midnight = (pl.col("vendor_t") % MS_PER_DAY) == 0
        fits = utc_midnight | (ny_midnight & exact & (ny.dt.date() == pl.col("day")))
    return pl.col("vendor_t").is_not_null() & fits


HELPER_COLUMNS = ("t_aligned",)
assert set(HELPER_COLUMNS).isdisjoint(CANDLE_COLUMNS)


def parse_json_page(body: bytes, *, request: str) -> dict[str, Any]:
    """Decode a reference-data page: one JSON object with status OK and a `results` list."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        head = body[:60].decode("utf-8", "replace")
        raise PolygonPayloadError(
            f"Polygon response for {request} is not valid JSON ({exc}); body starts {head!r}",
            request=request,
        ) from None
    if not isinstance(doc, dict):
        raise PolygonPayloadError(
            f"Polygon response for {request} is {type(doc).__name__}, expected an object",
            request=request,
        )
    if doc.get("status") != "OK":
        raise PolygonPayloadError(
            f"Polygon response for {request} has status {doc.get('status')!r}, expected OK",
            request=request,
        )
    # A missing or null `results` means no records, as in the official client.
    results = doc.get("results") or []
    if not isinstance(results, list):
        raise PolygonPayloadError(
            f"Polygon response for {request} has 'results' of type {type(results).__name__}, "
            "expected a list",
            request=request,
        )
    doc["results"] = results
    return doc
