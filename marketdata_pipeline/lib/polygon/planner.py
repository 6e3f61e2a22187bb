"""Request planning: the cheapest set of API requests that covers (window x symbols).

Requests are the scarce resource (5 a minute on the free tier), so the plan is chosen by cost:

- **range**: one request per symbol over the window's first..last trading day (a daily page holds
  up to 50,000 bars, ~198 years, so one page per symbol in practice);
- **grouped**: one grouped-daily request per trading day, each returning the whole market, which
  is then filtered to our symbols.

Non-trading days never cost a request (stocks follow the NYSE calendar; crypto trades daily), and
a window without a single trading day costs nothing at all. Days before the plan's history start
(`POLYGON_HISTORY_START`: the first day the key's plan serves) are never requested either: the
API would refuse them with 403; they are listed in `unserved_days` instead. Ties go to **range**:
a failure then only affects one symbol and responses stay small.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from marketdata_pipeline.lib.calendar import trading_days
from marketdata_pipeline.lib.polygon.aggregates import MAX_LIMIT
from marketdata_pipeline.lib.symbols import AssetClass, Symbol

Strategy = Literal["range", "grouped", "none"]

#: Rows a chunk of a streamed fetch aims at: a few tens of MB as frames (docs/benchmarks.md).
DEFAULT_CHUNK_ROWS = 250_000


def counted(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless `n` is 1: "1 request", "5 requests"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True)
class RequestPlan:
    """What will be requested for one asset class, and what each alternative would cost."""

    asset_class: AssetClass
    symbols: tuple[Symbol, ...]
    start: dt.date
    end: dt.date
    days: tuple[dt.date, ...]
    range_cost: int
    grouped_cost: int
    strategy: Strategy
    #: Trading days of the window before the plan's history start: not requested.
    unserved_days: tuple[dt.date, ...] = ()
    history_start: dt.date | None = None

    @property
    def cost(self) -> int:
        """Requests the chosen strategy makes when nothing needs a retry."""
        if self.strategy == "range":
            return self.range_cost
        if self.strategy == "grouped":
            return self.grouped_cost
        return 0

    @property
    def naive_cost(self) -> int:
        """Requests of the naive one-request-per-symbol-per-day approach, for comparison."""
        return len(self.symbols) * len(self.days)

    @property
    def range_window(self) -> tuple[dt.date, dt.date] | None:
        """First and last trading day in the window (what a range request asks for)."""
        return (self.days[0], self.days[-1]) if self.days else None

    def describe(self) -> str:
        """One line for logs: strategy, cost and the alternative's cost."""
        line = (
            f"{self.asset_class} plan: {self.strategy} ({counted(self.cost, 'request')}) for "
            f"{counted(len(self.symbols), 'symbol')} x {counted(len(self.days), 'trading day')} "
            f"{self.start}..{self.end}; "
            f"range would cost {self.range_cost}, grouped {self.grouped_cost}, "
            f"naive per-symbol-per-day {self.naive_cost}"
        )
        if self.unserved_days:
            line += (
                f"; {len(self.unserved_days)} trading days {self.unserved_days[0]}.."
                f"{self.unserved_days[-1]} not requested: before POLYGON_HISTORY_START "
                f"{self.history_start}, the first day the API plan serves"
            )
        return line

    def as_metadata(self) -> dict[str, object]:
        """A JSON-friendly summary for Dagster metadata."""
        return {
            "strategy": self.strategy,
            "planned_requests": self.cost,
            "range_cost": self.range_cost,
            "grouped_cost": self.grouped_cost,
            "naive_cost": self.naive_cost,
            "trading_days": len(self.days),
            "symbols": len(self.symbols),
            "unserved_days": len(self.unserved_days),
            "history_start": self.history_start.isoformat() if self.history_start else None,
        }


def served_days(
    start: dt.date, end: dt.date, history_start: dt.date | None
) -> tuple[dt.date, dt.date] | None:
    """The part of start..end the API plan serves (POLYGON_HISTORY_START on), or None when it
    serves none of it: the one statement of the rule. Earlier days are never requested (the
    API would answer 403 NOT_AUTHORIZED), and a run replaces only the served part, so history
    fetched earlier under a bigger plan is kept."""
    if history_start is None or history_start <= start:
        return start, end
    if history_start > end:
        return None
    return history_start, end


def plan_requests(
    asset_class: AssetClass,
    symbols: list[Symbol] | tuple[Symbol, ...],
    start: dt.date,
    end: dt.date,
    *,
    force: Strategy | None = None,
    history_start: dt.date | None = None,
) -> RequestPlan:
    """Choose the cheapest plan for `symbols` over `start`..`end` (inclusive).

    `force` picks a strategy regardless of cost (tests and the plan-equivalence check).
    `history_start` is the first day the API plan serves: earlier days are never requested.
    """
    all_days = tuple(trading_days(asset_class, start, end)) if end >= start else ()
    served = served_days(start, end, history_start)
    days = tuple(d for d in all_days if served is not None and d >= served[0])
    unserved = all_days[: len(all_days) - len(days)]
    syms = tuple(sorted(set(symbols)))
    if not days or not syms:
        return RequestPlan(
            asset_class, syms, start, end, days, 0, 0, "none", unserved, history_start
        )
    pages_per_symbol = math.ceil(len(days) / MAX_LIMIT)
    range_cost = len(syms) * pages_per_symbol
    grouped_cost = len(days)
    strategy: Strategy = force or ("grouped" if grouped_cost < range_cost else "range")
    return RequestPlan(
        asset_class,
        syms,
        start,
        end,
        days,
        range_cost,
        grouped_cost,
        strategy,
        unserved,
        history_start,
    )


def split_plan(plan: RequestPlan, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> list[RequestPlan]:
    """`plan` as consecutive sub-plans of about `chunk_rows` bars each, same requests in total.

    A range plan is split into blocks of symbols (each still over the whole window, so every
    request is the one the whole plan would make); a grouped plan into blocks of trading days,
    in day order, each for every symbol.
    """
    if plan.strategy == "range":
        per_chunk = max(1, chunk_rows // max(1, len(plan.days)))
        pages_per_symbol = plan.range_cost // len(plan.symbols)
        return [
            dataclasses.replace(
                plan,
                symbols=plan.symbols[i : i + per_chunk],
                range_cost=pages_per_symbol * len(plan.symbols[i : i + per_chunk]),
            )
            for i in range(0, len(plan.symbols), per_chunk)
        ]
    if plan.strategy == "grouped":
        per_chunk = max(1, chunk_rows // max(1, len(plan.symbols)))
        return [
            dataclasses.replace(
                plan,
                days=plan.days[i : i + per_chunk],
                start=plan.days[i],
                end=plan.days[min(i + per_chunk, len(plan.days)) - 1],
                grouped_cost=len(plan.days[i : i + per_chunk]),
            )
            for i in range(0, len(plan.days), per_chunk)
        ]
    return [plan]
