"""Reference data once a day: the requests of a second stock backfill on the same day.

For each case a fresh store and Dagster instance get N tracked stocks, then the same
`marketdata backfill` runs twice in a row, each as its own process (the installed command line,
a stock run with its corporate-action companions), against the simulator in another process.
The simulator's counters give what each run really sent; the figure is what the second run sent
beyond its candle plan (the plan's cost, as the command line prints it; target 0: the splits and
dividends were read by the first run that day). Each run's summary line ("requests made: ...")
must equal the simulator's count.

`python -m bench.reference_daily` (1 stock x 1 day and 12 stocks x 1 year, about a minute);
`--smoke`: one smaller case (3 stocks x 1 month).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from typing import Any

from bench.common import (
    REPO_ROOT,
    BenchPostgres,
    Figure,
    SimulatorProcess,
    cli_env,
    emit,
    module_main,
    postgres,
)
from polygon_simulator import market

# (label, stocks, first day, last day)
FULL_CASES = (
    ("1x1d", 1, "2024-03-04", "2024-03-04"),
    ("12x1y", 12, "2024-01-02", "2024-12-31"),
)
# One case: each costs a store, an instance and three command processes, and every figure of a
# case is computed and checked the same way whatever its size.
SMOKE_CASES = (("3x1m", 3, "2024-03-01", "2024-03-28"),)
FULL = {"cases": FULL_CASES}
SMOKE = {"cases": SMOKE_CASES}
CANDLE_KINDS = ("range", "grouped")
_PLAN = re.compile(r"stock plan: \w+ \((\d+) requests?\)")
_MADE = re.compile(r"^requests made: ([\d,]+)", re.MULTILINE)


def _marketdata(env: dict[str, str], *args: str) -> str:
    """`marketdata ARGS...` in its own process; its stdout (raises with stderr on failure)."""
    proc = subprocess.run(
        [sys.executable, "-m", "marketdata_pipeline.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"marketdata {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return proc.stdout


def _counts(sim: Any) -> dict[str, int]:
    return {k: int(n) for k, n in sim.stats()["by_kind"].items() if n}


def _run_twice(
    pg: BenchPostgres, sim: Any, stocks: int, first: str, last: str
) -> list[tuple[int, dict[str, int], int]]:
    """(plan cost, simulator counts by kind, summary total) of two same-day runs on a fresh
    store."""
    store = pg.create_database("bench_refdaily")
    events = pg.create_database("bench_refdaily_dagster", migrated=False)
    try:
        with tempfile.TemporaryDirectory(prefix="md-bench-refdaily-") as home:
            env = cli_env(sim, store, events, home)
            tickers = [t for t in market.stock_universe(stocks * 2) if "." not in t][:stocks]
            _marketdata(env, "symbols", "add", *tickers)
            runs = []
            for _ in range(2):
                sim.reset()
                out = _marketdata(
                    env, "backfill", "--start", first, "--end", last,
                    "--asset", "stock_daily_candles",
                )  # fmt: skip
                plan, made = _PLAN.search(out), _MADE.search(out)
                if plan is None or made is None:
                    raise RuntimeError(f"no plan or no 'requests made' line in:\n{out}")
                runs.append((int(plan.group(1)), _counts(sim), int(made.group(1).replace(",", ""))))
            return runs
    finally:
        pg.drop_database(store)
        pg.drop_database(events)


def measure_case(
    pg: BenchPostgres, sim: Any, label: str, stocks: int, first: str, last: str
) -> list[Figure]:
    """The requests beyond the candle plan of the first and second run of one day."""
    figures: list[Figure] = []
    (plan, first_counts, first_made), (plan2, second_counts, second_made) = _run_twice(
        pg, sim, stocks, first, last
    )
    beyond = [sum(c.values()) - p for p, c in ((plan, first_counts), (plan2, second_counts))]
    summaries_right = first_made == sum(first_counts.values()) and second_made == sum(
        second_counts.values()
    )
    emit(
        Figure(
            f"reference_daily.{label}.first_run_beyond_plan",
            beyond[0],
            "requests",
            anchor=f"candle plan {plan}",
            note=f"by kind {first_counts}",
        ),
        figures,
    )
    emit(
        Figure(
            f"reference_daily.{label}.second_run_beyond_plan",
            beyond[1],
            "requests",
            anchor=f"first run of the day: {beyond[0]}",
            target="= 0",
            met=beyond[1] == 0,
            note=f"by kind {second_counts}, candle plan {plan2}",
        ),
        figures,
    )
    emit(
        Figure(
            f"reference_daily.{label}.summary_vs_simulator",
            second_made,
            "requests",
            anchor=f"simulator counted {sum(second_counts.values())} (first run: "
            f"summary {first_made}, simulator {sum(first_counts.values())})",
            target="summary = simulator",
            met=summaries_right,
        ),
        figures,
    )
    return figures


def run(
    *, pg: BenchPostgres | None = None, sim: Any | None = None, cases=FULL_CASES
) -> list[Figure]:
    """Measure and print the figures of every case; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, cases=cases)
    figures: list[Figure] = []
    with postgres(pg) as server:
        for case in cases:
            figures += measure_case(server, sim, *case)
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.reference_daily [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
