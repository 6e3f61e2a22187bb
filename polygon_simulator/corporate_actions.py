"""Splits and dividends of the simulator: the events, their endpoints, and split-adjusted bars.

Tests make a split "happen" by configuring it (`SimulatorConfig.splits`, or `POST /_sim/config`
with `{"splits": [...]}`); from then on the simulator behaves like the vendor once it knows a
split:

- the splits endpoints list it (`/stocks/v1/splits`, and the deprecated `/v3/reference/splits`);
- `adjusted=false` bars are the as-traded series: the synthetic prices up to the day before the
  execution date, and from the execution date on the synthetic prices times split_from/split_to
  (rounded to the cent grid like any price), volume inversely: a real split shows as a step;
- `adjusted=true` bars are the as-traded bars times the product of split_from/split_to over the
  ticker's splits executed after the bar's day (volume divided by it), so the adjusted series
  is smooth and changes retroactively when a split is configured, as the vendor's does.

A split whose execution date is after the simulator's today is announced (listed) but not
applied yet; like the vendor's overnight adjustment, one executing today already applies.
With no splits configured every bar is exactly what it was before.

The default world has a few real events (`DEFAULT_SPLITS`, `DEFAULT_DIVIDENDS`: the AAPL, TSLA
and NVDA splits since 2020 and the 2024 AAPL and MSFT dividends), so a store filled from the
simulator shows them; `NO_CORPORATE_ACTIONS` is the config of a world without any (the test
suite's, whose tests configure the events they are about).

Dividends (`SimulatorConfig.dividends`) are listed by `/stocks/v1/dividends` and
`/v3/reference/dividends`; they never change bars (the vendor never adjusts for dividends).

This module holds the events and the bars; the four endpoints are in event_endpoints.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polygon_simulator import market
from polygon_simulator.reference_query import EventQueryError

# EventQueryError (the endpoints' 400) stays importable from here: listings.py takes it here.
__all__ = [
    "DEFAULT_DIVIDENDS",
    "DEFAULT_SPLITS",
    "NO_CORPORATE_ACTIONS",
    "EventQueryError",
    "SimDividend",
    "SimSplit",
    "SplitFactor",
    "apply_splits",
    "executed_factors",
    "factors_by_ticker",
    "validate_unique_splits",
]

#: One split as applied to bars: (execution day number, split_from / split_to).
SplitFactor = tuple[int, float]


def _stock_ticker(value: str) -> str:
    """Corporate actions exist for stock tickers only."""
    if market.is_crypto(value) or not market.is_valid_ticker(value):
        raise ValueError(f"corporate actions are for stock tickers only, got {value!r}")
    return value


class SimSplit(BaseModel):
    """A configured split: `split_to` new shares for every `split_from` old ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticker: str
    execution_date: dt.date
    split_from: float = Field(gt=0)
    split_to: float = Field(gt=0)
    # forward_split / reverse_split are derived from the ratio; stock_dividend must be said.
    adjustment_type: Literal["forward_split", "reverse_split", "stock_dividend"] | None = None

    @field_validator("ticker")
    @classmethod
    def _stock(cls, value: str) -> str:
        return _stock_ticker(value)

    @model_validator(mode="after")
    def _not_identity(self) -> SimSplit:
        if self.split_from == self.split_to:
            raise ValueError(f"split {self.ticker} {self.execution_date} has a 1:1 ratio")
        return self

    @property
    def kind(self) -> str:
        """The v1 `adjustment_type`."""
        if self.adjustment_type is not None:
            return self.adjustment_type
        return "reverse_split" if self.split_from > self.split_to else "forward_split"


class SimDividend(BaseModel):
    """A configured cash dividend (never changes any bar)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticker: str
    ex_dividend_date: dt.date
    cash_amount: float = Field(ge=0)
    currency: str = "USD"
    declaration_date: dt.date | None = None
    record_date: dt.date | None = None
    pay_date: dt.date | None = None
    frequency: int = 4
    distribution_type: Literal["recurring", "special", "supplemental", "irregular", "unknown"] = (
        "recurring"
    )

    @field_validator("ticker")
    @classmethod
    def _stock(cls, value: str) -> str:
        return _stock_ticker(value)


def _split(ticker: str, day: str, split_from: float, split_to: float) -> SimSplit:
    return SimSplit(
        ticker=ticker,
        execution_date=dt.date.fromisoformat(day),
        split_from=split_from,
        split_to=split_to,
    )


def _dividend(ticker: str, ex_day: str, cash: float) -> SimDividend:
    return SimDividend(
        ticker=ticker, ex_dividend_date=dt.date.fromisoformat(ex_day), cash_amount=cash
    )


#: Splits of the default world (as the vendor lists them).
DEFAULT_SPLITS: tuple[SimSplit, ...] = (
    _split("AAPL", "2020-08-31", 1, 4),
    _split("TSLA", "2022-08-25", 1, 3),
    _split("NVDA", "2024-06-10", 1, 10),
)
#: Cash dividends of the default world: the 2024 quarterly dividends of AAPL and MSFT.
DEFAULT_DIVIDENDS: tuple[SimDividend, ...] = (
    _dividend("AAPL", "2024-02-09", 0.24),
    _dividend("AAPL", "2024-05-10", 0.25),
    _dividend("AAPL", "2024-08-12", 0.25),
    _dividend("AAPL", "2024-11-08", 0.25),
    _dividend("MSFT", "2024-02-14", 0.75),
    _dividend("MSFT", "2024-05-15", 0.75),
    _dividend("MSFT", "2024-08-15", 0.75),
    _dividend("MSFT", "2024-11-20", 0.83),
)
#: Config fields of a world without corporate actions.
NO_CORPORATE_ACTIONS: dict[str, tuple] = {"splits": (), "dividends": ()}


def validate_unique_splits(splits: tuple[SimSplit, ...]) -> tuple[SimSplit, ...]:
    """Refuse two splits of one ticker on one day (the vendor keys them that way too)."""
    seen: set[tuple[str, dt.date]] = set()
    for split in splits:
        key = (split.ticker, split.execution_date)
        if key in seen:
            raise ValueError(f"two splits of {split.ticker} on {split.execution_date}")
        seen.add(key)
    return splits


# --- bars -----------------------------------------------------------------------------------------


def executed_factors(
    splits: tuple[SimSplit, ...], ticker: str, today: dt.date
) -> tuple[SplitFactor, ...]:
    """The ticker's splits already executed at `today`, as (day number, from/to), by date."""
    return tuple(
        (market.day_number(s.execution_date), s.split_from / s.split_to)
        for s in sorted(splits, key=lambda s: s.execution_date)
        if s.ticker == ticker and s.execution_date <= today
    )


def factors_by_ticker(
    splits: tuple[SimSplit, ...], today: dt.date
) -> dict[str, tuple[SplitFactor, ...]]:
    """`executed_factors` of every ticker that has at least one executed split."""
    tickers = sorted({s.ticker for s in splits})
    out = {t: executed_factors(splits, t, today) for t in tickers}
    return {t: f for t, f in out.items() if f}


_PRICE_FIELDS = ("o", "h", "l", "c", "vw")
_STOCK_SCALE = 1e4  # stock prices carry 4 decimals (market.TickerParams.decimals)


def apply_splits(
    columns: dict[str, np.ndarray],
    factors: list[tuple[SplitFactor, ...]],
    *,
    adjusted: bool,
) -> dict[str, np.ndarray]:
    """Turn synthetic bars into as-traded (`adjusted=False`) or split-adjusted bars.

    `factors[i]` are the executed splits of row i's ticker. Rows without splits are returned
    bit for bit unchanged. As-traded prices from an execution date on are the synthetic ones
    times split_from/split_to, rounded to the price grid; adjusted prices are the as-traded ones
    times the product of split_from/split_to over the splits after the row's day.
    """
    days = columns["day"].astype("datetime64[D]").astype(np.int64)
    upto = np.ones(len(days))
    after = np.ones(len(days))
    for i, row_factors in enumerate(factors):
        for exec_day, ratio in row_factors:
            if days[i] >= exec_day:
                upto[i] *= ratio
            else:
                after[i] *= ratio
    if np.all(upto == 1.0) and (not adjusted or np.all(after == 1.0)):
        return columns
    out = dict(columns)
    moved = upto != 1.0
    if moved.any():
        scale = np.full(len(days), _STOCK_SCALE)
        for field in _PRICE_FIELDS:
            out[field] = np.where(
                moved, market._round(columns[field] * upto, scale), columns[field]
            )
        out["v"] = np.where(moved, np.maximum(np.rint(columns["v"] / upto), 1.0), columns["v"])
    if adjusted:
        scaled = after != 1.0
        for field in _PRICE_FIELDS:
            out[field] = np.where(scaled, out[field] * after, out[field])
        out["v"] = np.where(scaled, out["v"] / after, out["v"])
    return out
