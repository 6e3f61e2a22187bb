"""The SQL and the frame shapes behind `marketdata_pipeline.read`.

Statements are built with psycopg's `sql` module and their values inlined as literals: the ADBC
driver reads a statement without parameters through binary COPY, its fastest path (bound
parameters made it 1.5-3x slower, docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl
from psycopg import sql

from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_BY_CLASS, CANDLE_SCHEMA
from marketdata_pipeline.lib.postgres.arrow import query_frame
from marketdata_pipeline.lib.postgres.ddl import SCHEMA
from marketdata_pipeline.lib.symbols import AssetClass

#: The columns (and types) of every candle frame the reader returns.
BAR_SCHEMA: dict[str, pl.DataType] = {
    name: CANDLE_SCHEMA[name]
    for name in (
        "symbol",
        "day",
        "ts",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "transactions",
        "provisional",
    )
}
#: The columns (and types) of `returns`.
RETURNS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "day": pl.Date(),
    "prev_day": pl.Date(),
    "prev_close": pl.Float64(),
    "close": pl.Float64(),
    "dividend": pl.Float64(),
    "dividend_adjusted": pl.Float64(),
    "simple_return": pl.Float64(),
    "total_return": pl.Float64(),
}
#: Where daily returns are read from: the table the stock candle runs keep (the rows of the view
#: `stock_daily_returns`, read from an index instead of recomputed).
RETURNS_TABLE = "stock_daily_returns_stored"
#: Prices a total-return adjustment scales (volume and transactions stay as they are).
_SCALED = ("open", "high", "low", "close", "vwap")


def _where(
    first: dt.date, last: dt.date, keys: list[str] | None, key: str = "symbol"
) -> sql.Composable:
    conditions = [sql.SQL("day >= {} AND day <= {}").format(sql.Literal(first), sql.Literal(last))]
    if keys is not None:
        conditions.append(sql.SQL("{} = ANY({})").format(sql.Identifier(key), sql.Literal(keys)))
    return sql.SQL(" AND ").join(conditions)


def _select(
    columns: Iterable[str], relation: str, where: sql.Composable, key: str = "symbol"
) -> str:
    """`SELECT columns FROM marketdata.relation WHERE ... ORDER BY key, day`, as text."""
    return (
        sql.SQL("SELECT {columns} FROM {relation} WHERE {where} ORDER BY {key}, day")
        .format(
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            relation=sql.Identifier(SCHEMA, relation),
            where=where,
            key=sql.Identifier(key),
        )
        .as_string()
    )


def candle_query(
    first: dt.date,
    last: dt.date,
    symbols: list[str] | None = None,
    *,
    asset_class: AssetClass = AssetClass.STOCK,
    adjustment: str = "split",
) -> str:
    """The SQL `candles` sends for a window (values inlined, quoted by psycopg: the driver
    reads a statement without parameters through binary COPY, its fastest path)."""
    table = CANDLE_ASSET_BY_CLASS[asset_class]
    if asset_class is AssetClass.STOCK and adjustment == "none":
        table = "stock_daily_candles_unadjusted"
    return _select(BAR_SCHEMA, table, _where(first, last, symbols))


def returns_query(first: dt.date, last: dt.date, symbols: list[str] | None = None) -> str:
    """The SQL `returns` sends for a window (see `candle_query`)."""
    return _select(RETURNS_SCHEMA, RETURNS_TABLE, _where(first, last, symbols))


def dividend_factors(url: str, symbols: list[str] | None) -> pl.DataFrame:
    """Per ex-date: the factor every earlier bar is scaled by for this and all later dividends.

    A day's total return is `(close + dividend) / prev_close - 1`; scaling each earlier bar by
    `close / (close + dividend)` of the ex-date makes the close's change that return. The
    factors of all later ex-dates multiply (a reverse cumulative product per symbol).
    """
    where: sql.Composable = sql.SQL("dividend_adjusted > 0")
    if symbols is not None:
        where = sql.SQL("{} AND symbol = ANY({})").format(where, sql.Literal(symbols))
    events = query_frame(
        url,
        sql.SQL(
            "SELECT symbol, day, close / (close + dividend_adjusted) AS ratio"
            " FROM {} WHERE {} ORDER BY symbol, day"
        ).format(sql.Identifier(SCHEMA, RETURNS_TABLE), where),
        schema={"symbol": pl.String(), "day": pl.Date(), "ratio": pl.Float64()},
    )
    return events.select(
        "symbol",
        "day",
        pl.col("ratio").cum_prod(reverse=True).over("symbol").alias("factor"),
    ).sort("day")


def reinvest(bars: pl.DataFrame, factors: pl.DataFrame) -> pl.DataFrame:
    """`bars` scaled by the factor of the first ex-date after each bar (1 after the last)."""
    if bars.height == 0 or factors.height == 0:
        return bars
    joined = bars.sort("day").join_asof(
        factors,
        on="day",
        by="symbol",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,  # both sorted by day above, which is what a grouped asof needs
    )
    factor = pl.col("factor").fill_null(1.0)
    return (
        joined.with_columns(*(pl.col(c) * factor for c in _SCALED))
        .drop("factor")
        .sort("symbol", "day")
    )


#: The columns (and types) of `security_candles`: the security, then the bar as traded under
#: the ticker of that day (split-adjusted as stored).
SECURITY_BAR_SCHEMA: dict[str, pl.DataType] = {
    "security_id": pl.String(),
    "ticker": pl.String(),
    **{name: dtype for name, dtype in BAR_SCHEMA.items() if name != "symbol"},
}


def security_query(first: dt.date, last: dt.date, securities: list[str] | None = None) -> str:
    """The SQL `security_candles` sends (the view `security_daily_candles`: one company's
    bars across renames, and under a reused ticker only its own days)."""
    where = _where(first, last, securities, key="security_id")
    return _select(SECURITY_BAR_SCHEMA, "security_daily_candles", where, key="security_id")


def security_at_query(ticker: str, day: dt.date) -> str:
    """The SQL of `security_at`: the function `marketdata.security_at(ticker, day)`."""
    return (
        sql.SQL("SELECT {}.security_at({}, {}) AS security_id")
        .format(sql.Identifier(SCHEMA), sql.Literal(ticker), sql.Literal(day))
        .as_string()
    )
