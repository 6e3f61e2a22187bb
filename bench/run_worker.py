"""What a launched run costs: the one-day stock run as the daemon's or the webserver's run worker
executes it, with the code location's executor against Dagster's multiprocess executor.

A run the daemon, the UI or a sensor launches executes in a run worker process, which runs the
job with its executor. Dagster's default, the multiprocess executor, starts one more process per
step, and each imports the code location again (the stock run has 7 steps); the in-process
executor runs the steps in the run worker itself, as `marketdata backfill` always has. Here the
run worker is `dagster job execute` (the same executor path, in a process of its own) of
`stock_candles_job` for one tracked stock over one day, on a store and instance that already
hold that day (both runs do the same work):

- `run_worker.multiprocess`: the anchor, the code location built with Dagster's default executor
  (`bench/_multiprocess_location.py`, loaded as a file);
- `run_worker.code_location`: the code location as deployed (`marketdata_pipeline.definitions`).

CPU is user + system time of the run worker and every process it waited for; wall is the whole
command. Best of `repeats` each. `python -m bench.run_worker` (about a minute); `--smoke`: one
repeat.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
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

FULL = {"repeats": 3}
SMOKE = {"repeats": 1}
DAY = "2024-03-04"
#: How `dagster job execute` loads each. The anchor is a file, not `bench._multiprocess_location`:
#: importing the `bench` package clears the API variables the run's processes need.
LOCATIONS = {
    "multiprocess": ("-f", str(REPO_ROOT / "bench" / "_multiprocess_location.py")),
    "code_location": ("-m", "marketdata_pipeline.definitions"),
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(env: dict[str, str], command: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of `command` as its own process."""
    cpu, began = _children_cpu(), time.perf_counter()
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    wall, cpu = time.perf_counter() - began, _children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-4000:]}")
    return cpu, wall


def _execute(location: tuple[str, str]) -> list[str]:
    tags = json.dumps({"dagster/partition": DAY})
    return [
        *(sys.executable, "-m", "dagster", "job", "execute", *location, "-a", "defs"),
        *("-j", "stock_candles_job", "--tags", tags),
    ]


def measure(pg: BenchPostgres, sim: Any, repeats: int) -> dict[str, tuple[float, float]]:
    """name -> (best CPU seconds, best wall seconds) of each location's run."""
    store = pg.create_database("bench_worker")
    events = pg.create_database("bench_worker_dagster", migrated=False)
    cli = [sys.executable, "-m", "marketdata_pipeline.cli"]
    found: dict[str, tuple[float, float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="md-bench-worker-") as home:
            env = cli_env(sim, store, events, home)
            _run(env, [*cli, "symbols", "add", "AAPL"])
            # The instance's tables, and the day's reference load, before anything is timed.
            _run(env, [*cli, "backfill", "--start", DAY, "--end", DAY])
            for name, location in LOCATIONS.items():
                runs = [_run(env, _execute(location)) for _ in range(repeats)]
                found[name] = (min(r[0] for r in runs), min(r[1] for r in runs))
    finally:
        pg.drop_database(store)
        pg.drop_database(events)
    return found


def run(*, pg: BenchPostgres | None = None, sim: Any | None = None, repeats: int = 3):
    """Measure and print the figures; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, repeats=repeats)
    with postgres(pg) as server:
        found = measure(server, sim, repeats)
    figures: list[Figure] = []
    anchor_cpu, anchor_wall = found["multiprocess"]
    for name, (cpu, wall) in found.items():
        anchored = name != "multiprocess"
        emit(
            Figure(
                f"run_worker.{name}",
                cpu,
                "s CPU",
                ratio=cpu / anchor_cpu if anchored else None,
                anchor="the multiprocess executor" if anchored else "a process per step",
                note=f"wall {wall:.2f} s"
                + (f" ({wall / anchor_wall:.2f}x)" if anchored else "")
                + f", best of {repeats}",
            ),
            figures,
        )
    return figures


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.run_worker [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
