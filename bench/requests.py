"""Benchmark 3, request economy: requests a fetch really makes, against the fewest possible.

For each case, `PolygonResource.fetch_chunks` (in one chunk) runs against the simulator and the
simulator's own counter says how many API requests arrived. That is compared with:

- the planner's minimum, `min(range cost, grouped cost)` over the window's trading days
  (target: equal, i.e. a ratio of 1.00x: no retries, no extra pages, no request for a day
  without a session);
- the naive approach, one request per symbol per trading day (weekends and holidays already
  excluded, so the naive figure is a generous one).

Cases: 500 symbols x 5 trading days (grouped daily wins) and 20 symbols x 5 years (range wins).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bench.common import Figure, SimulatorProcess, emit, module_main
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.planner import plan_requests
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from marketdata_pipeline_tests.resources import fetch_candles
from polygon_simulator import market

# (label, symbols, first day, last day)
FULL_CASES = (
    ("500x5d", 500, dt.date(2024, 6, 3), dt.date(2024, 6, 7)),
    ("20x5y", 20, dt.date(2020, 1, 1), dt.date(2024, 12, 31)),
)
SMOKE_CASES = (
    ("30x3d", 30, dt.date(2024, 6, 3), dt.date(2024, 6, 5)),
    ("3x1y", 3, dt.date(2024, 1, 1), dt.date(2024, 12, 31)),
)

FULL = {"cases": FULL_CASES}
SMOKE = {"cases": SMOKE_CASES}


def measure_case(
    sim: Any, label: str, n_symbols: int, start: dt.date, end: dt.date
) -> list[Figure]:
    """Fetch one case through the resource and compare the simulator's count with the plan."""
    figures: list[Figure] = []
    symbols = [Symbol(t, AssetClass.STOCK) for t in market.stock_universe(n_symbols)]
    plan = plan_requests(AssetClass.STOCK, symbols, start, end)
    polygon = PolygonResource(
        api_key=sim.api_key,
        base_url=sim.base_url,
        requests_per_minute=60_000,
    )
    sim.reset()
    try:
        result = fetch_candles(polygon, AssetClass.STOCK, symbols, CandleWindow(start, end))
    finally:
        polygon.close()
    made = sim.stats()["requests"]
    if result.errors:
        raise RuntimeError(f"{label}: fetch failed for {sorted(result.errors)[:5]}")
    minimum = min(plan.range_cost, plan.grouped_cost)
    rows = f"{result.frame.height:,} rows, {plan.strategy} plan"
    emit(
        Figure(
            f"requests.{label}.made",
            made,
            "requests",
            ratio=made / minimum,
            anchor=f"planner minimum {minimum}",
            target="= 1.00x",
            met=made == minimum,
            note=rows,
        ),
        figures,
    )
    emit(
        Figure(
            f"requests.{label}.naive",
            plan.naive_cost,
            "requests",
            ratio=plan.naive_cost / made,
            phrase="{ratio:.0f}x what we made",
            note=f"one per symbol per trading day ({len(plan.days)} days)",
        ),
        figures,
    )
    return figures


def run(*, sim: Any | None = None, cases=FULL_CASES) -> list[Figure]:
    """Measure and print the request-economy figures; return them."""
    figures: list[Figure] = []
    if sim is None:
        with SimulatorProcess() as own:
            return run(sim=own, cases=cases)
    for case in cases:
        figures += measure_case(sim, *case)
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.requests [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
