"""Benchmark 6, scale: ten years x 1,000 stock symbols (about 2.5 million rows) as one run.

`stock_daily_candles` is materialised for 2015-01-01..2024-12-31 as a single Dagster run
(partition-range tags, as `BackfillPolicy.single_run()` does) in a child process, against a real
Dagster instance on Postgres and the simulator (itself in another process, so only the pipeline's
memory is counted). Reported: the run's wall time, split into our pipeline's work and Dagster's
per-partition bookkeeping, and the child's peak RSS (`VmHWM`, the kernel's high-water mark of its
resident memory, which includes polars' Rust allocations). Target: peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bench.common import (
    BenchPostgres,
    Figure,
    SimulatorProcess,
    current_rss_bytes,
    emit,
    module_main,
    postgres,
    quiet_logs,
    run_child,
)

FULL = {"symbols": 1_000, "start": "2015-01-01", "end": "2024-12-31"}
SMOKE = {"symbols": 3, "start": "2024-01-02", "end": "2024-01-08"}
TARGET_RSS_BYTES = 1.5e9


def _child(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: one run of the whole window, timed, with its phases and row count."""
    import dagster as dg
    import psycopg

    from bench.common import (
        Timer,
        candle_asset,
        candle_resources,
        candle_run_config,
        dagster_instance,
        range_tags,
        run_phases,
    )
    from polygon_simulator import market

    class _Sim:  # what candle_resources needs from a simulator
        base_url = args["base_url"]
        api_key = args["api_key"]

    quiet_logs()
    names = list(market.stock_universe(args["symbols"]))
    start, end = dt.date.fromisoformat(args["start"]), dt.date.fromisoformat(args["end"])
    with dagster_instance(args["storage_url"]) as instance:
        resources = candle_resources(_Sim, args["database_url"])
        baseline = current_rss_bytes()
        with Timer() as timer:
            result = dg.materialize(
                [candle_asset()],
                resources=resources,
                instance=instance,
                tags=range_tags(start, end),
                run_config=candle_run_config("stock_daily_candles", names),
            )
        if not result.success:
            raise RuntimeError("the ten-year run failed")
        phases = run_phases(instance, result.run_id, timer.seconds)
    with psycopg.connect(args["database_url"]) as conn:
        rows = conn.execute("SELECT count(*) FROM marketdata.stock_daily_candles").fetchone()[0]
    return {"seconds": timer.seconds, "rows": rows, "baseline_rss": baseline, **phases}


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    symbols: int = FULL["symbols"],
    start: str = FULL["start"],
    end: str = FULL["end"],
) -> list[Figure]:
    """Measure and print the scale figures; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, symbols=symbols, start=start, end=end)
    figures: list[Figure] = []
    with (
        postgres(pg) as server,
        server.temporary_database("scale") as url,
        server.temporary_database("dagster", migrated=False) as storage_url,
    ):
        sim.reset()
        child = run_child(
            "bench.scale",
            {
                "symbols": symbols,
                "start": start,
                "end": end,
                "base_url": sim.base_url,
                "api_key": sim.api_key,
                "database_url": url,
                "storage_url": storage_url,
            },
        )
        requests = sim.stats()["requests"]
    out = child.payload
    emit(
        Figure(
            "scale.run",
            out["seconds"],
            "s",
            note=(
                f"{out['rows']:,} rows, {symbols} symbols, {out['partitions']} partitions "
                f"{start}..{end}, {requests} requests"
            ),
        ),
        figures,
    )
    emit(
        Figure(
            "scale.pipeline",
            out["pipeline_seconds"],
            "s",
            ratio=out["pipeline_seconds"] / out["seconds"],
            phrase="{ratio:.0%} of the run",
            note=(
                f"fetch, validate, checks, write; {out['rows'] / out['pipeline_seconds']:,.0f} "
                f"rows/s; the write alone {out['write_seconds']:.1f} s"
            ),
        ),
        figures,
    )
    emit(
        Figure(
            "scale.dagster",
            out["dagster_seconds"],
            "s",
            ratio=out["dagster_seconds"] / out["seconds"],
            phrase="{ratio:.0%} of the run",
            note=(
                f"run and event-log bookkeeping, "
                f"{out['dagster_seconds'] / max(out['partitions'], 1) * 1000:.0f} ms per partition"
            ),
        ),
        figures,
    )
    emit(
        Figure(
            "scale.peak_rss",
            child.max_rss_bytes / 1e9,
            "GB",
            ratio=child.max_rss_bytes / TARGET_RSS_BYTES,
            anchor="the 1.5 GB target",
            target="<= 1.5 GB",
            met=child.max_rss_bytes <= TARGET_RSS_BYTES,
            note=f"the child's VmHWM; {out['baseline_rss'] / 1e6:.0f} MB before the run",
        ),
        figures,
    )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.scale [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv, child=_child)


if __name__ == "__main__":
    main()
