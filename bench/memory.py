"""Peak memory of a run at 1x and 10x the rows: a streamed run's memory follows its chunk.

`stock_daily_candles` for 2023-01-01..2024-12-31 (502 sessions) as one Dagster run in a fresh
child process (a real instance on Postgres, the simulator in another process), for N and 10 N
symbols with the default streaming (`rows_per_chunk`, validated chunks spooled to disk), and
for 10 N symbols as one chunk (everything in memory at once, how runs worked before streaming)
as the anchor. Reported: each child's peak RSS (`VmHWM`); target: 10x rows <= 1.1x the peak of
1x.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bench.common import (
    BenchPostgres,
    Figure,
    SimulatorProcess,
    emit,
    module_main,
    postgres,
    run_child,
)

FULL = {"symbols": 200, "start": "2023-01-01", "end": "2024-12-31", "rows_per_chunk": 100_000}
SMOKE = {"symbols": 3, "start": "2024-01-02", "end": "2024-01-12", "rows_per_chunk": 10}
TARGET_RATIO = 1.1


def _child(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: one run over the window for `symbols` with `rows_per_chunk`."""
    import dagster as dg
    import psycopg

    from bench.common import (
        Timer,
        candle_asset,
        candle_resources,
        dagster_instance,
        quiet_logs,
        range_tags,
    )
    from marketdata_pipeline.lib.candles.schema import candle_run_config
    from polygon_simulator import market

    class _Sim:  # what candle_resources needs from a simulator
        base_url = args["base_url"]
        api_key = args["api_key"]

    quiet_logs()
    names = list(market.stock_universe(args["symbols"]))
    start, end = dt.date.fromisoformat(args["start"]), dt.date.fromisoformat(args["end"])
    config = candle_run_config(
        {"stock_daily_candles": names},
        extra={"stock_daily_candles": {"rows_per_chunk": args["rows_per_chunk"]}},
        log_level="WARNING",
    )
    with dagster_instance(args["storage_url"]) as instance:
        resources = candle_resources(_Sim, args["database_url"])
        with Timer() as timer:
            result = dg.materialize(
                [candle_asset()],
                resources=resources,
                instance=instance,
                tags=range_tags(start, end),
                run_config=config,
            )
        if not result.success:
            raise RuntimeError("the run failed")
    with psycopg.connect(args["database_url"]) as conn:
        rows = conn.execute("SELECT count(*) FROM marketdata.stock_daily_candles").fetchone()[0]
    return {"seconds": timer.seconds, "rows": rows}


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    symbols: int = FULL["symbols"],
    start: str = FULL["start"],
    end: str = FULL["end"],
    rows_per_chunk: int = FULL["rows_per_chunk"],
) -> list[Figure]:
    """Measure and print the memory figures; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(
                pg=pg, sim=own, symbols=symbols, start=start, end=end, rows_per_chunk=rows_per_chunk
            )
    figures: list[Figure] = []
    cases = {
        "1x": (symbols, rows_per_chunk),
        "10x": (symbols * 10, rows_per_chunk),
        "10x_one_chunk": (symbols * 10, 10**12),
    }
    peaks: dict[str, tuple[float, dict[str, Any]]] = {}
    with postgres(pg) as server:
        for name, (count, chunk) in cases.items():
            with (
                server.temporary_database("memory") as url,
                server.temporary_database("dagster", migrated=False) as storage_url,
            ):
                child = run_child(
                    "bench.memory",
                    {
                        "symbols": count,
                        "start": start,
                        "end": end,
                        "rows_per_chunk": chunk,
                        "base_url": sim.base_url,
                        "api_key": sim.api_key,
                        "database_url": url,
                        "storage_url": storage_url,
                    },
                )
                peaks[name] = (child.max_rss_bytes, child.payload)
    base = peaks["1x"][0]
    for name, (peak, out) in peaks.items():
        ratio = peak / base
        emit(
            Figure(
                f"memory.peak_rss_{name}",
                peak / 1e6,
                "MB",
                ratio=ratio,
                phrase="{ratio:.2f}x the 1x run",
                target=f"<= {TARGET_RATIO}x" if name == "10x" else None,
                met=ratio <= TARGET_RATIO if name == "10x" else None,
                note=f"{out['rows']:,} rows in {out['seconds']:.1f} s, "
                + (
                    f"rows_per_chunk {cases[name][1]:,}" if name != "10x_one_chunk" else "one chunk"
                ),
            ),
            figures,
        )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.memory [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv, child=_child)


if __name__ == "__main__":
    main()
