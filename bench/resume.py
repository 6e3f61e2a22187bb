"""Requests over a killed backfill and its rerun, against the plan: the page cache at work.

A grouped history backfill of N stocks runs as the code location runs it (the child of
`bench.market_scale`: `stock_candles_job`, a Dagster instance from `dagster.yaml`) against the
simulator in another process, and is killed with SIGKILL once the simulator has counted half of
the plan's grouped requests. The same run is then started again, with the same page cache
directory, and runs to the end. The simulator's counters give the grouped requests of each run;
the figure is their sum over the plan's cost (target: <= 1.1x; only the requests in flight at
the kill, answered but never read, are paid twice). The stored rows are checked against what the
plan should store.

`python -m bench.resume` (1,000 stocks x 2 years of a 10,000-ticker market: 503 grouped requests,
about 2 minutes); `--smoke` for seconds. `--strategy range` forces the range plan instead (one
request a stock, each reaching to the window's last day), and `--end` the window's last day: with
yesterday, every range request reaches into the revision window, whose pages the cache keeps for
`MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES` only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.common import (
    REPO_ROOT,
    BenchPostgres,
    Figure,
    SimulatorProcess,
    _child_env,
    emit,
    postgres,
    quiet_logs,
    run_child,
)
from bench.market_scale import TABLE, _planned, _sqlalchemy, window

FULL = {"stocks": 1_000, "years": 2, "end": "2024-12-31", "universe": 10_000}
# The smoke size's pages are tiny: each answer is slowed down so the kill lands half-way.
SMOKE = {"stocks": 20, "years": 1, "end": "2024-01-31", "universe": 40, "days": 20, "delay": 0.3}
TARGET_RATIO = 1.1


def _requests(sim: Any, kind: str) -> int:
    """Candle requests of `kind` (grouped or range) the simulator counted."""
    return int(sim.stats()["by_kind"].get(kind, 0))


def _kill_half_way(args: dict[str, Any], sim: Any, half: int, timeout: float) -> None:
    """Start the run in a child and SIGKILL it once the simulator counted `half` requests."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.market_scale", "--child", json.dumps(args)],
        cwd=REPO_ROOT,
        env=_child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while _requests(sim, args["strategy"]) < half:
            if proc.poll() is not None:
                raise RuntimeError("the run ended before it could be killed half-way")
            if time.monotonic() > deadline:
                raise TimeoutError("the run never got half-way")
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    stocks: int = FULL["stocks"],
    years: int = FULL["years"],
    end: str = FULL["end"],
    universe: int = FULL["universe"],
    days: int | None = None,
    delay: float = 0.0,
    timeout: float = 1800.0,
    strategy: str = "grouped",
) -> list[Figure]:
    """Measure and print the killed-run-and-rerun figures; return them."""
    universe = max(universe, stocks)
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, stocks=stocks, years=years, end=end, universe=universe,
                       days=days, delay=delay, timeout=timeout, strategy=strategy)  # fmt: skip
    config = sim.configure()
    before = int(config["stock_universe_size"] if isinstance(config, dict)
                 else config.stock_universe_size)  # fmt: skip
    sim.configure(stock_universe_size=universe)
    try:
        return _measure(
            pg, sim, stocks, universe, window(years, end, days), delay, timeout, strategy
        )
    finally:
        sim.configure(stock_universe_size=before)


def _measure(
    pg: BenchPostgres | None,
    sim: Any,
    stocks: int,
    universe: int,
    span: tuple[dt.date, dt.date],
    delay: float,
    timeout: float,
    strategy: str,
) -> list[Figure]:
    first, last = span
    plan = _planned(stocks, universe, first, last, strategy)
    figures: list[Figure] = []
    with (
        postgres(pg) as server,
        server.temporary_database("resume") as url,
        server.temporary_database("dagster", migrated=False) as dagster_url,
        tempfile.TemporaryDirectory(prefix="md-bench-pages-") as pages,
    ):
        args = {
            "stocks": stocks,
            "universe": universe,
            "first": first.isoformat(),
            "last": last.isoformat(),
            "base_url": sim.base_url,
            "api_key": sim.api_key,
            "database_url": url,
            "dagster_url": _sqlalchemy(dagster_url),
            "cache_dir": pages,
            "strategy": strategy,
        }
        sim.reset()
        if delay:
            sim.add_fault(kind="delay", seconds=delay, endpoint=strategy)
        _kill_half_way(args, sim, max(1, plan.cost // 2), timeout)
        killed = _requests(sim, strategy)
        kept = sum(1 for _ in Path(pages).rglob("*.page"))
        with psycopg.connect(url) as conn:
            written = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
        if written:
            raise RuntimeError(f"the killed run left {written} rows: it must write nothing")
        sim.reset()
        child = run_child("bench.market_scale", args, timeout=timeout)
        rerun = _requests(sim, strategy)
        left = sum(1 for _ in Path(pages).rglob("*.page"))
    rows = child.payload["rows"]
    total = killed + rerun
    ratio = total / plan.cost if plan.cost else 0.0
    unit = f"{strategy} requests"
    size = f"{stocks:,} stocks x {first}..{last}, plan {plan.cost:,} {unit}"
    emit(Figure("resume.killed_run", killed, unit,
                note=f"{size}; SIGKILL at {killed:,} requests, {kept:,} pages kept, 0 rows "
                "written"), figures)  # fmt: skip
    emit(Figure("resume.rerun", rerun, unit,
                note=f"{rows:,} rows stored in {child.payload['seconds']:.1f} s; {left} pages "
                "left after the commit"), figures)  # fmt: skip
    emit(
        Figure(
            "resume.requests_vs_plan",
            total,
            unit,
            ratio=ratio,
            phrase="{ratio:.3f}x the plan",
            target=f"<= {TARGET_RATIO}x the plan",
            met=ratio <= TARGET_RATIO,
            note=f"killed run {killed:,} + rerun {rerun:,} over a plan of {plan.cost:,}",
        ),
        figures,
    )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.resume [--smoke | --stocks N --years Y]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--stocks", type=int, default=FULL["stocks"])
    parser.add_argument("--years", type=int, default=FULL["years"])
    parser.add_argument("--end", default=FULL["end"])
    parser.add_argument("--universe", type=int, default=FULL["universe"])
    parser.add_argument("--strategy", choices=("grouped", "range"), default="grouped")
    args = parser.parse_args(argv)
    quiet_logs()
    if args.smoke:
        return run(**SMOKE, strategy=args.strategy)
    return run(
        stocks=args.stocks,
        years=args.years,
        end=args.end,
        universe=args.universe,
        strategy=args.strategy,
    )


if __name__ == "__main__":
    main()
