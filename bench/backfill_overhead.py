"""Benchmark 5, backfill overhead: one single-run backfill against one run per partition.

Through a real Dagster instance (runs and events in Postgres, as in production), on the simulator,
`stock_daily_candles` for 50 symbols over one year (its 252 NYSE-session partitions in 2024):

- **Measured**: the year as one run (`dg.materialize` with the partition-range tags, what
  `BackfillPolicy.single_run()` makes a UI backfill do);
- **Anchor**: one run per partition (`dg.materialize(partition_key=...)`) for the first N
  partitions (sessions) of the year, scaled to the year's partitions.

Both start warm: the instance has run once, and the simulator has already served every request
(its body cache), so the figures compare the pipeline and Dagster, not price synthesis. The single
run's wall time is also split into our pipeline's work and Dagster's per-partition bookkeeping.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from bench.common import (
    BenchPostgres,
    Figure,
    SimulatorProcess,
    Timer,
    candle_asset,
    candle_resources,
    candle_run_config,
    dagster_instance,
    emit,
    module_main,
    postgres,
    range_tags,
    run_phases,
)
from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from marketdata_pipeline_tests.resources import fetch_candles
from polygon_simulator import market

FULL = {"symbols": 50, "year": 2024, "sampled_partitions": 20}
SMOKE = {"symbols": 3, "year": 2024, "sampled_partitions": 1, "days": 5}


def _warm_simulator(resources: dict[str, Any], symbols: list[str], days: list[dt.date]) -> None:
    polygon = resources["polygon"]
    syms = [Symbol(s, AssetClass.STOCK) for s in symbols]
    fetch_candles(polygon, AssetClass.STOCK, syms, CandleWindow(days[0], days[-1]))
    for day in days:
        fetch_candles(polygon, AssetClass.STOCK, syms, CandleWindow(day, day))


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    symbols: int = FULL["symbols"],
    year: int = FULL["year"],
    sampled_partitions: int = FULL["sampled_partitions"],
    days: int | None = None,
) -> list[Figure]:
    """Measure and print the backfill figures; return them. `days` shortens the window."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(
                pg=pg,
                sim=own,
                symbols=symbols,
                year=year,
                sampled_partitions=sampled_partitions,
                days=days,
            )
    figures: list[Figure] = []
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)
    if days is not None:
        last = first + dt.timedelta(days=days - 1)
    # Stock partitions are NYSE sessions: the keys of the window are its sessions.
    window = stock_sessions(first, last)
    n_partitions = len(window)
    sampled = window[:sampled_partitions]
    names = list(market.stock_universe(symbols))
    config = candle_run_config("stock_daily_candles", names)
    with (
        postgres(pg) as server,
        server.temporary_database("backfill") as url,
        server.temporary_database("dagster", migrated=False) as storage_url,
        dagster_instance(storage_url) as instance,
    ):
        resources = candle_resources(sim, url)
        _warm_simulator(resources, names, window)
        warm = dg.materialize(
            [candle_asset()],
            resources=resources,
            instance=instance,
            partition_key=window[-2].isoformat(),
            run_config=config,
        )
        assert warm.success
        sim.reset()
        with Timer() as single:
            result = dg.materialize(
                [candle_asset()],
                resources=resources,
                instance=instance,
                tags=range_tags(window[0], window[-1]),
                run_config=config,
            )
        if not result.success:
            raise RuntimeError("the single-run backfill failed")
        single_requests = sim.stats()["requests"]
        phases = run_phases(instance, result.run_id, single.seconds)

        sim.reset()
        with Timer() as each:
            for day in sampled:
                one = dg.materialize(
                    [candle_asset()],
                    resources=resources,
                    instance=instance,
                    partition_key=day.isoformat(),
                    run_config=config,
                )
                if not one.success:
                    raise RuntimeError(f"the run for partition {day} failed")
        sampled_requests = sim.stats()["requests"]

    scale = n_partitions / len(sampled)
    per_partition = each.seconds * scale
    ratio = per_partition / single.seconds
    emit(
        Figure(
            "backfill.single_run",
            single.seconds,
            "s",
            note=f"{n_partitions} partitions x {symbols} symbols, {single_requests} requests",
        ),
        figures,
    )
    emit(
        Figure(
            "backfill.single_run_pipeline",
            phases["pipeline_seconds"],
            "s",
            ratio=phases["pipeline_seconds"] / single.seconds,
            phrase="{ratio:.0%} of the run",
            note=f"fetch, validate, checks, write ({phases['write_seconds']:.2f} s)",
        ),
        figures,
    )
    emit(
        Figure(
            "backfill.single_run_dagster",
            phases["dagster_seconds"],
            "s",
            ratio=phases["dagster_seconds"] / single.seconds,
            phrase="{ratio:.0%} of the run",
            note=f"{phases['dagster_seconds'] / n_partitions * 1000:.0f} ms per partition event",
        ),
        figures,
    )
    emit(
        Figure(
            "backfill.per_partition_runs",
            per_partition,
            "s",
            ratio=ratio,
            phrase="{ratio:.1f}x the single run",
            note=(
                f"{len(sampled)} runs took {each.seconds:.2f} s "
                f"({each.seconds / len(sampled):.2f} s each, {sampled_requests} requests), "
                f"scaled x{scale:.1f}"
            ),
        ),
        figures,
    )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.backfill_overhead [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
