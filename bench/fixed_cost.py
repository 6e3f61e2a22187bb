"""The fixed cost of a command: a one-symbol, one-day backfill and `symbols list`.

Each command runs as its own process (the installed command line, as a user types it) against
a store on the bench Postgres and the simulator in another process; the anchor is
`python -c "import dagster"` timed in the same run (the floor of any command that runs Dagster).
Figures are the best of `repeats` runs (the machine's load moves single runs):

- `fixed_cost.backfill_one_day`: `marketdata backfill` of one tracked stock over one day (the
  stock run with its companions), against the anchor (target <= 2x);
- `fixed_cost.run_floor`: a process that imports the code location and opens the instance
  (what every Dagster run from the command line pays before its first step), against the
  anchor: the part of the backfill's ratio no change to the run itself can remove;
- `fixed_cost.symbols_list`: `marketdata symbols list` (target <= 0.3 s: it needs no Dagster).

`python -m bench.fixed_cost` (about a minute); `--smoke` for fewer repeats.
"""

from __future__ import annotations

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

FULL = {"repeats": 5}
SMOKE = {"repeats": 1}
DAY = "2024-03-04"
TARGET_BACKFILL_RATIO = 2.0
TARGET_LIST_SECONDS = 0.3
#: The floor of a run: the code location imported and the instance opened, nothing run.
FLOOR_CODE = (
    "import dagster as dg\n"
    "from marketdata_pipeline.defs.build import build_defs\n"
    "from marketdata_pipeline.lib.settings import load_settings\n"
    "build_defs(load_settings()).resolve_job_def('stock_candles_job')\n"
    "dg.DagsterInstance.get().dispose()\n"
)


def _timed(env: dict[str, str], *command: str) -> float:
    """Seconds `command` took as its own process (raises with its stderr when it fails)."""
    began = time.perf_counter()
    proc = subprocess.run(
        list(command), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stderr[-4000:]}")
    return seconds


def _best(repeats: int, env: dict[str, str], *command: str) -> float:
    return min(_timed(env, *command) for _ in range(repeats))


def measure(pg: BenchPostgres, sim: Any, repeats: int) -> list[Figure]:
    """The three timings of one run, on a fresh store and Dagster instance."""
    figures: list[Figure] = []
    store = pg.create_database("bench_fixed")
    events = pg.create_database("bench_fixed_dagster", migrated=False)
    cli = (sys.executable, "-m", "marketdata_pipeline.cli")
    try:
        with tempfile.TemporaryDirectory(prefix="md-bench-fixed-") as home:
            env = cli_env(sim, store, events, home)
            _timed(env, *cli, "symbols", "add", "AAPL")
            backfill = (*cli, "backfill", "--start", DAY, "--end", DAY)
            _timed(env, *backfill)  # the instance's first run creates its tables: not timed
            anchor = _best(repeats, env, sys.executable, "-c", "import dagster")
            one_day = _best(repeats, env, *backfill)
            floor = _best(repeats, env, sys.executable, "-c", FLOOR_CODE)
            listing = _best(repeats, env, *cli, "symbols", "list")
            bare = _best(repeats, env, sys.executable, "-c", "pass")
    finally:
        pg.drop_database(store)
        pg.drop_database(events)
    ratio = one_day / anchor
    emit(
        Figure(
            "fixed_cost.import_dagster",
            anchor,
            "s",
            anchor="the floor of a command that runs Dagster",
        ),
        figures,
    )
    emit(
        Figure(
            "fixed_cost.backfill_one_day",
            one_day,
            "s",
            ratio=ratio,
            anchor="import dagster",
            target=f"<= {TARGET_BACKFILL_RATIO:g}x",
            met=ratio <= TARGET_BACKFILL_RATIO,
            note=f"1 stock x 1 day, best of {repeats}",
        ),
        figures,
    )
    emit(
        Figure(
            "fixed_cost.run_floor",
            floor,
            "s",
            ratio=floor / anchor,
            anchor="import dagster",
            note=f"code location + instance, no run; the run itself: {one_day - floor:.2f} s",
        ),
        figures,
    )
    emit(
        Figure(
            "fixed_cost.symbols_list",
            listing,
            "s",
            ratio=listing / anchor,
            anchor="import dagster",
            target=f"<= {TARGET_LIST_SECONDS:g} s",
            met=listing <= TARGET_LIST_SECONDS,
            note=f"python -c pass takes {bare:.3f} s; best of {repeats}",
        ),
        figures,
    )
    return figures


def run(*, pg: BenchPostgres | None = None, sim: Any | None = None, repeats: int = 5):
    """Measure and print the figures; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, repeats=repeats)
    with postgres(pg) as server:
        return measure(server, sim, repeats)


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.fixed_cost [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
