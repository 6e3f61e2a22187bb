"""The splits and dividends endpoints: what each accepts, the records' real shapes, paging.

`/stocks/v1/splits`, `/stocks/v1/dividends` and the deprecated `/v3/reference/splits`,
`/v3/reference/dividends` list the configured corporate actions (see corporate_actions.py)
with the real filters, `limit`/`sort` and cursors (see reference_query.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from polygon_simulator.corporate_actions import SimDividend, SimSplit
from polygon_simulator.reference_query import EventQueryError, parse_query_day

Version = Literal["v1", "v3"]
Kind = Literal["splits", "dividends"]


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


def _matches(value: Any, op: str, wanted: str, name: str) -> bool:
    if op == "any_of":
        return str(value) in wanted.split(",")
    if isinstance(value, dt.date):
        target: Any = parse_query_day(wanted, name)
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
            parse_query_day(wanted, key)
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
