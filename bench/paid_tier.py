"""Benchmark 4, paid-tier throughput: our resource against the official `massive` client.

Against the simulator with 100 ms added to every response and a 6,000 requests/minute budget
(paid tiers ask for under 100 requests/s), fetch 500 symbols x 1 year of daily bars:

- **Anchor**: the official client the way its README shows it, `RESTClient(api_key, base=...)`
  and `for a in client.list_aggs(ticker, 1, "day", from_, to, limit=50000)`, sequential over the
  symbols (500 range requests).
- **Ours, range plan**: `PolygonResource.fetch_chunks` (in one chunk) forced to one range
  request per symbol, the same 500 requests: concurrency within the client-side budget is the
  only difference.
- **Ours, auto plan**: what the resource really does; with 500 symbols and 252 sessions the
  planner picks grouped daily (252 requests, each the whole market filtered to our symbols).

Each is compared with the budget's floor, requests / (budget per second): 500 requests at 100/s
is 5 s. Targets: >= 8x faster than the official client; within 1.3x of the floor.

The simulator caches response bodies; each timed pass is preceded by an untimed pass of the same
requests, so every side is served from a warm cache and the simulator's own synthesis of
prices never counts against anyone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bench.common import Figure, SimulatorProcess, Timer, emit, module_main
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.engine import FetchResult
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from marketdata_pipeline_tests.resources import fetch_candles
from polygon_simulator import market

FULL = {
    "symbols": 500,
    "start": dt.date(2024, 1, 1),
    "end": dt.date(2024, 12, 31),
    "latency_seconds": 0.1,
    "requests_per_minute": 6_000,
}
SMOKE = {
    "symbols": 12,
    "start": dt.date(2024, 6, 3),
    "end": dt.date(2024, 6, 28),
    "latency_seconds": 0.02,
    "requests_per_minute": 6_000,
}
TARGET_SPEEDUP = 8.0
TARGET_FLOOR_RATIO = 1.3


def ours(
    sim: Any, symbols: list[Symbol], start: dt.date, end: dt.date, rpm: int, force: str | None
) -> tuple[float, FetchResult]:
    """Seconds for one `fetch_candles` (resource set-up and teardown included), and its result."""
    with Timer() as timer:
        polygon = PolygonResource(
            api_key=sim.api_key,
            base_url=sim.base_url,
            requests_per_minute=rpm,
        )
        try:
            result = fetch_candles(
                polygon, AssetClass.STOCK, symbols, CandleWindow(start, end), force_strategy=force
            )
        finally:
            polygon.close()
    if result.errors:
        raise RuntimeError(f"our fetch failed for {sorted(result.errors)[:5]}")
    return timer.seconds, result


def official(sim: Any, symbols: list[Symbol], start: dt.date, end: dt.date) -> tuple[float, int]:
    """Seconds for the official client's README loop over the symbols, and the bars it got."""
    from massive import RESTClient

    bars = 0
    with Timer() as timer:
        client = RESTClient(api_key=sim.api_key, base=sim.base_url)
        for symbol in symbols:
            for _agg in client.list_aggs(
                symbol.api_ticker, 1, "day", start.isoformat(), end.isoformat(), limit=50000
            ):
                bars += 1
    return timer.seconds, bars


def run(
    *,
    sim: Any | None = None,
    symbols: int = FULL["symbols"],
    start: dt.date = FULL["start"],
    end: dt.date = FULL["end"],
    latency_seconds: float = FULL["latency_seconds"],
    requests_per_minute: int = FULL["requests_per_minute"],
) -> list[Figure]:
    """Measure and print the paid-tier figures; return them."""
    if sim is None:
        with SimulatorProcess(latency_seconds=latency_seconds) as own:
            return run(
                sim=own,
                symbols=symbols,
                start=start,
                end=end,
                latency_seconds=latency_seconds,
                requests_per_minute=requests_per_minute,
            )
    sim.configure(latency_seconds=latency_seconds)
    figures: list[Figure] = []
    per_second = requests_per_minute / 60
    syms = [Symbol(t, AssetClass.STOCK) for t in market.stock_universe(symbols)]
    rpm = requests_per_minute

    ours(sim, syms, start, end, rpm, "range")  # warm the simulator's cache for range requests
    sim.reset()
    massive_s, massive_bars = official(sim, syms, start, end)
    massive_requests = sim.stats()["requests"]
    emit(
        Figure(
            "paid_tier.official_client",
            massive_s,
            "s",
            note=f"massive list_aggs loop: {massive_requests} requests, {massive_bars:,} bars",
        ),
        figures,
    )

    sim.reset()
    range_s, range_result = ours(sim, syms, start, end, rpm, "range")
    range_requests = sim.stats()["requests"]
    if range_result.frame.height != massive_bars:
        raise RuntimeError(f"bars differ: ours {range_result.frame.height}, {massive_bars}")
    _, warm = ours(sim, syms, start, end, rpm, None)  # warm the cache for the auto plan
    auto_plan = warm.plan
    sim.reset()
    auto_s, auto_result = ours(sim, syms, start, end, rpm, None)
    auto_requests = sim.stats()["requests"]
    if auto_result.frame.height != massive_bars:
        raise RuntimeError(f"bars differ: ours {auto_result.frame.height}, {massive_bars}")

    for label, seconds, requests, strategy in (
        ("ours_auto", auto_s, auto_requests, auto_plan.strategy),
        ("ours_range", range_s, range_requests, "range"),
    ):
        speedup = massive_s / seconds
        emit(
            Figure(
                f"paid_tier.{label}",
                seconds,
                "s",
                ratio=speedup,
                phrase="{ratio:.1f}x faster than the official client",
                target=f">= {TARGET_SPEEDUP:.0f}x",
                met=speedup >= TARGET_SPEEDUP,
                note=f"{strategy} plan, {requests} requests",
            ),
            figures,
        )
        floor = requests / per_second
        emit(
            Figure(
                f"paid_tier.{label}_vs_floor",
                seconds / floor,
                "x",
                anchor=f"floor {requests} requests at {per_second:.0f}/s = {floor:.2f} s",
                target=f"<= {TARGET_FLOOR_RATIO}x",
                met=seconds / floor <= TARGET_FLOOR_RATIO,
            ),
            figures,
        )
    massive_floor = massive_requests / per_second
    emit(
        Figure(
            "paid_tier.ours_auto_vs_official_floor",
            auto_s / massive_floor,
            "x",
            anchor=f"official client's floor: {massive_requests} requests = {massive_floor:.2f} s",
            target=f"<= {TARGET_FLOOR_RATIO}x",
            met=auto_s / massive_floor <= TARGET_FLOOR_RATIO,
        ),
        figures,
    )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.paid_tier [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
