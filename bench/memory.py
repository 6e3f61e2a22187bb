"""Peak memory of a run at 1x and 10x the rows: a streamed run's memory follows its chunk.

`stock_daily_candles` for 2023-01-01..2024-12-31 (502 sessions) as one Dagster run in a fresh
child process (a real instance on Postgres, the simulator in another process), for N and 10 N
symbols with the default streaming (`rows_per_chunk`, validated chunks spooled to disk), and
for 10 N symbols as one chunk (everything in memory at once, how runs worked before streaming)
as the anchor. Reported: each child's peak RSS (`VmHWM`); target: 10x rows <= 1.1x the peak of
1x.

The stock path, as a user's backfill runs it: the code location's `stock_candles_job`
(`build_defs(load_settings())`: the candles, `stock_splits`, `stock_dividends` and
`stock_split_adjustments` with its `split_vs_move` check over every tracked stock) for the same
N and 10 N symbols, all tracked, a split of every 20th of them in the window; and at 10 N once
more with the candles streamed but `stock_split_adjustments`' `rows_per_chunk` past the
window's rows, so its `split_vs_move` check reads the whole window at once (as it did before
it read in batches). Target: 10x rows <= 1.1x the peak of 1x, corporate actions included.
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
#: One stock in this many gets a split in the window on the stock path (events to classify).
SPLIT_EVERY = 20


def _child(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: one run over the window for `symbols` with `rows_per_chunk`."""
    if args.get("stock_path"):
        return _stock_path_child(args)
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


def _stock_path_child(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: `stock_candles_job` over the window, as the code location runs it."""
    import os
    import shutil
    import tempfile
    from pathlib import Path

    import dagster as dg
    import psycopg

    from bench.common import REPO_ROOT, Timer, quiet_logs
    from marketdata_pipeline.backfill_request import BackfillRequest
    from marketdata_pipeline.defs.build import build_defs
    from marketdata_pipeline.defs.candles.jobs import STOCK_CANDLES_JOB
    from marketdata_pipeline.lib.candles.schema import candle_run_config
    from marketdata_pipeline.lib.candles.window import CandleWindow
    from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
    from marketdata_pipeline.lib.settings import load_settings
    from marketdata_pipeline.lib.symbols import parse_symbols
    from polygon_simulator import market

    quiet_logs()
    names = list(market.stock_universe(args["symbols"]))
    first, last = dt.date.fromisoformat(args["start"]), dt.date.fromisoformat(args["end"])
    home = Path(tempfile.mkdtemp(prefix="md-bench-memory-"))
    os.environ.update(
        {
            "POLYGON_API_KEY": args["api_key"],
            "POLYGON_BASE_URL": args["base_url"],
            "POLYGON_REQUESTS_PER_MINUTE": "1000000",
            "MARKETDATA_DATABASE_URL": args["database_url"],
            "MARKETDATA_DAGSTER_STORAGE_URL": args["storage_url"],
            "MARKETDATA_START_DATE": first.isoformat(),
            "MARKETDATA_HOME": str(home),
        }
    )
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    with psycopg.connect(args["database_url"]) as conn:
        add_symbols(conn, parse_symbols(names, "stock"))  # the checks read the tracked stocks
    (run,) = BackfillRequest(
        CandleWindow(first, last), ("stock_daily_candles",), {"stock_daily_candles": names}
    ).runs()
    config = candle_run_config(
        {"stock_daily_candles": names},
        extra={
            "stock_daily_candles": {"rows_per_chunk": args["rows_per_chunk"]},
            "stock_split_adjustments": {"rows_per_chunk": args["check_rows_per_chunk"]},
        },
        log_level="WARNING",
    )
    try:
        job = build_defs(load_settings()).resolve_job_def(STOCK_CANDLES_JOB)
        with dg.DagsterInstance.from_config(str(home)) as instance, Timer() as timer:
            result = job.execute_in_process(
                run_config=config,
                instance=instance,
                tags=run.window.run_tags(),
                raise_on_error=False,
            )
        if not result.success:
            raise RuntimeError(f"the {len(names)}-stock run {first}..{last} failed")
        (check,) = [
            e for e in result.get_asset_check_evaluations() if e.check_name == "split_vs_move"
        ]
    finally:
        shutil.rmtree(home, ignore_errors=True)
    with psycopg.connect(args["database_url"]) as conn:
        rows = conn.execute("SELECT count(*) FROM marketdata.stock_daily_candles").fetchone()[0]
        splits = conn.execute("SELECT count(*) FROM marketdata.stock_splits").fetchone()[0]
    return {
        "seconds": timer.seconds,
        "rows": rows,
        "splits": splits,
        "chunks_read": check.metadata["chunks_read"].value,
        "split_events": check.metadata["split_events"].value,
    }


def _splits(symbols: int, start: str, end: str) -> list[dict[str, Any]]:
    """A 2-for-1 split of every SPLIT_EVERY-th stock of the 10x universe, mid-window."""
    from polygon_simulator import market

    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    day = first + (last - first) / 2
    while day.weekday() >= 5:  # a weekday (a holiday is fine: the next session steps)
        day += dt.timedelta(days=1)
    return [
        {"ticker": t, "execution_date": day.isoformat(), "split_from": 1, "split_to": 2}
        for t in market.stock_universe(symbols)[::SPLIT_EVERY]
    ]


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
    one = 10**12  # past any window's rows: one chunk
    # name: (symbols, the candles' rows_per_chunk, the checks' rows_per_chunk, stock path)
    cases = {
        "1x": (symbols, rows_per_chunk, rows_per_chunk, False),
        "10x": (symbols * 10, rows_per_chunk, rows_per_chunk, False),
        "10x_one_chunk": (symbols * 10, one, one, False),
        "stock_path_1x": (symbols, rows_per_chunk, rows_per_chunk, True),
        "stock_path_10x": (symbols * 10, rows_per_chunk, rows_per_chunk, True),
        "stock_path_10x_check_in_one_read": (symbols * 10, rows_per_chunk, one, True),
    }
    peaks: dict[str, tuple[float, dict[str, Any]]] = {}
    with postgres(pg) as server:
        for name, (count, chunk, check_chunk, stock_path) in cases.items():
            sim.configure(splits=_splits(symbols * 10, start, end) if stock_path else [])
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
                        "check_rows_per_chunk": check_chunk,
                        "base_url": sim.base_url,
                        "api_key": sim.api_key,
                        "database_url": url,
                        "storage_url": storage_url,
                        "stock_path": stock_path,
                    },
                )
                peaks[name] = (child.max_rss_bytes, child.payload)
    sim.configure(splits=[])
    for name, (peak, out) in peaks.items():
        anchor = "stock_path_1x" if name.startswith("stock_path") else "1x"
        ratio = peak / peaks[anchor][0]
        targeted = name in ("10x", "stock_path_10x")
        chunk = cases[name][1]
        chunking = f"rows_per_chunk {chunk:,}" if chunk < one else "one chunk"
        extra = (
            f", {out['splits']} splits, split_vs_move in {out['chunks_read']} read"
            + ("s" if out["chunks_read"] != 1 else "")
            if "chunks_read" in out
            else ""
        )
        emit(
            Figure(
                f"memory.peak_rss_{name}",
                peak / 1e6,
                "MB",
                ratio=ratio,
                phrase=f"{{ratio:.2f}}x the {anchor} run",
                target=f"<= {TARGET_RATIO}x" if targeted else None,
                met=ratio <= TARGET_RATIO if targeted else None,
                note=f"{out['rows']:,} rows in {out['seconds']:.1f} s, {chunking}{extra}",
            ),
            figures,
        )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.memory [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv, child=_child)


if __name__ == "__main__":
    main()
