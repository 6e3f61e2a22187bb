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
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from polygon_simulator import market

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


# --- the reference endpoints ----------------------------------------------------------------------

Version = Literal["v1", "v3"]
Kind = Literal["splits", "dividends"]


class EventQueryError(ValueError):
    """A query parameter the real API would reject with 400; the message is the error text."""


@dataclass(frozen=True)
class EndpointSpec:
    """What one of the four endpoints accepts."""

    kind: Kind
    version: Version
    date_field: str
    default_limit: int
    max_limit: int
    default_sort: str


_SPLIT, _EX = "execution_date", "ex_dividend_date"
ENDPOINTS: dict[str, EndpointSpec] = {
    "/stocks/v1/splits": EndpointSpec("splits", "v1", _SPLIT, 100, 5000, f"{_SPLIT}.desc"),
    "/v3/reference/splits": EndpointSpec("splits", "v3", _SPLIT, 10, 1000, _SPLIT),
    "/stocks/v1/dividends": EndpointSpec("dividends", "v1", _EX, 100, 5000, "ticker.asc"),
    "/v3/reference/dividends": EndpointSpec("dividends", "v3", _EX, 10, 1000, _EX),
}

_RANGE_OPS = ("gt", "gte", "lt", "lte")


def _event_id(*parts: object) -> str:
    return "E" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def split_record(split: SimSplit, version: Version, splits: tuple[SimSplit, ...]) -> dict:
    """A split in the endpoint's real shape (v1 adds adjustment_type and the vendor factor)."""
    record: dict[str, Any] = {
        "execution_date": split.execution_date.isoformat(),
        "id": _event_id(split.ticker, split.execution_date, split.split_from, split.split_to),
        "split_from": _number(split.split_from),
        "split_to": _number(split.split_to),
        "ticker": split.ticker,
    }
    if version == "v1":
        # Cumulative to today's share basis: this split and every later one of the ticker.
        factor = 1.0
        for other in splits:
            if other.ticker == split.ticker and other.execution_date >= split.execution_date:
                factor *= other.split_from / other.split_to
        record = {
            "adjustment_type": split.kind,
            **record,
            "historical_adjustment_factor": round(factor, 6),
        }
        record = dict(sorted(record.items()))
    return record


def dividend_record(
    dividend: SimDividend, version: Version, splits: tuple[SimSplit, ...], today: dt.date
) -> dict:
    """A dividend in the endpoint's real shape; dates the config leaves out are omitted."""
    record: dict[str, Any] = {
        "cash_amount": dividend.cash_amount,
        "currency": dividend.currency,
        "declaration_date": dividend.declaration_date,
        "ex_dividend_date": dividend.ex_dividend_date,
        "frequency": dividend.frequency,
        "id": _event_id(dividend.ticker, dividend.ex_dividend_date, dividend.cash_amount),
        "pay_date": dividend.pay_date,
        "record_date": dividend.record_date,
        "ticker": dividend.ticker,
    }
    if version == "v1":
        later = 1.0
        for split in splits:
            if (
                split.ticker == dividend.ticker
                and dividend.ex_dividend_date < split.execution_date <= today
            ):
                later *= split.split_from / split.split_to
        record["distribution_type"] = dividend.distribution_type
        record["split_adjusted_cash_amount"] = round(dividend.cash_amount * later, 6)
    else:
        record["dividend_type"] = "SC" if dividend.distribution_type == "special" else "CD"
    return {
        k: (v.isoformat() if isinstance(v, dt.date) else v)
        for k, v in sorted(record.items())
        if v is not None
    }


def encode_event_cursor(params: list[tuple[str, str]], offset: int) -> str:
    """The opaque cursor of a reference next_url: the whole query plus the next offset."""
    text = urlencode([*params, ("page_marker", str(offset))])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_event_cursor(cursor: str) -> tuple[list[tuple[str, str]], int]:
    """Inverse of `encode_event_cursor`; raises EventQueryError for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        pairs = parse_qsl(raw, keep_blank_values=True, strict_parsing=True)
        offset = int(dict(pairs)["page_marker"])
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError):
        raise EventQueryError("Failed to parse query parameters: invalid cursor") from None
    return [(k, v) for k, v in pairs if k != "page_marker"], offset


def _parse_day(value: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise EventQueryError(
            f"Could not parse the query parameter: '{name}'. Value must be formatted 'yyyy-mm-dd'"
        ) from None


def _matches(value: Any, op: str, wanted: str, name: str) -> bool:
    if op == "any_of":
        return str(value) in wanted.split(",")
    if isinstance(value, dt.date):
        target: Any = _parse_day(wanted, name)
    elif isinstance(value, int | float):
        try:
            target = float(wanted)
        except ValueError:
            raise EventQueryError(f"Could not parse the query parameter: '{name}'") from None
    else:
        target = wanted
    if op == "eq":
        return value == target
    return {
        "gt": value > target,
        "gte": value >= target,
        "lt": value < target,
        "lte": value <= target,
    }[op]


def _sort_keys(spec: EndpointSpec, params: dict[str, str]) -> list[tuple[str, bool]]:
    """(field, descending) pairs from the v1 `sort=a.asc,b.desc` or v3 `sort=a&order=desc`."""
    if spec.version == "v1":
        keys = []
        for item in (params.get("sort") or spec.default_sort).split(","):
            field, _, direction = item.strip().partition(".")
            if direction not in ("", "asc", "desc"):
                raise EventQueryError(f"Could not parse the query parameter: 'sort' ({item!r})")
            keys.append((field, direction == "desc"))
        return keys
    order = params.get("order") or "desc"  # undocumented default: samples list newest first
    if order not in ("asc", "desc"):
        raise EventQueryError("Could not parse the query parameter: 'order'. Use asc or desc")
    return [(params.get("sort") or spec.default_sort, order == "desc")]


_FILTER_FIELDS: dict[str, frozenset[str]] = {
    "splits": frozenset(
        {"ticker", "execution_date", "split_from", "split_to", "adjustment_type", "reverse_split"}
    ),
    "dividends": frozenset(
        {
            "ticker", "ex_dividend_date", "record_date", "declaration_date", "pay_date",
            "cash_amount", "frequency", "distribution_type", "currency",
        }
    ),
}  # fmt: skip


def _filter_fields(event: SimSplit | SimDividend) -> dict[str, Any]:
    fields = event.model_dump()
    if isinstance(event, SimSplit):
        fields["adjustment_type"] = event.kind
        fields["reverse_split"] = event.split_from > event.split_to
    return fields


def list_events(
    spec: EndpointSpec,
    pairs: list[tuple[str, str]],
    offset: int,
    *,
    splits: tuple[SimSplit, ...],
    dividends: tuple[SimDividend, ...],
    today: dt.date,
) -> tuple[list[dict], int | None]:
    """The page of records for a query (`pairs` without cursor), and the next page's offset."""
    params = dict(pairs)
    raw_limit = params.get("limit") or str(spec.default_limit)
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise EventQueryError(
            f"Could not parse the query parameter: 'limit'. Use an integer from 1 to "
            f"{spec.max_limit}"
        )
    limit = min(int(raw_limit), spec.max_limit)
    rows = [(_filter_fields(e), e) for e in (splits if spec.kind == "splits" else dividends)]
    allowed = _FILTER_FIELDS[spec.kind]
    for key, wanted in pairs:
        if key in ("limit", "sort", "order"):
            continue
        field, _, op = key.partition(".")
        op = op or "eq"
        if field not in allowed or op not in (*_RANGE_OPS, "eq", "any_of"):
            raise EventQueryError(f"Unknown query parameter: '{key}'")
        if field == "reverse_split":
            flag = wanted.lower() == "true"
            rows = [r for r in rows if r[0]["reverse_split"] == flag]
            continue
        if field.endswith("_date") and op != "any_of":
            _parse_day(wanted, key)
        rows = [
            r for r in rows if r[0][field] is not None and _matches(r[0][field], op, wanted, key)
        ]
    for field, descending in reversed(_sort_keys(spec, params)):
        if field not in allowed:
            raise EventQueryError(f"Could not parse the query parameter: 'sort' ({field!r})")
        rows.sort(key=lambda r, f=field: (r[0][f] is None, r[0][f]), reverse=descending)
    page = rows[offset : offset + limit]
    next_offset = offset + limit if offset + limit < len(rows) else None
    if spec.kind == "splits":
        records = [split_record(e, spec.version, splits) for _, e in page]  # type: ignore[arg-type]
    else:
        records = [dividend_record(e, spec.version, splits, today) for _, e in page]  # type: ignore[arg-type]
    return records, next_offset
