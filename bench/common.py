"""What every benchmark shares: a throwaway Postgres, the simulator, timers, figures, RSS.

Every figure is measured against its anchor *in the same run, on the same machine*, so the ratio
means something even when the absolute numbers move from one machine to the next. A figure prints
as one line, `name: value unit (ratio vs anchor)`, with the target and whether it was met.

The simulator runs in a child process (`SimulatorProcess`): in the benchmark's own process
uvicorn would take the GIL from the client being measured, and with two cores a separate process
is closer to a remote API. Postgres is a pgserver instance in a temporary directory, stopped and
deleted at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_API_KEY = "bench-key-not-secret"


# --- figures ------------------------------------------------------------------------------------


@dataclass
class Figure:
    """One measured figure, with its ratio against the anchor measured in the same run."""

    name: str
    value: float
    unit: str
    ratio: float | None = None
    anchor: str | None = None
    target: str | None = None
    met: bool | None = None
    note: str | None = None
    #: How to say the ratio when "Nx vs anchor" reads wrong, e.g. "IO manager {ratio:.1f}x faster".
    phrase: str | None = None

    def line(self) -> str:
        """`name: value unit (ratio vs anchor) [target: met|MISSED] -- note`."""
        text = f"{self.name}: {_fmt(self.value)} {self.unit}"
        if self.ratio is not None and self.phrase:
            text += " (" + self.phrase.format(ratio=self.ratio) + ")"
        elif self.ratio is not None:
            text += f" ({self.ratio:.2f}x vs {self.anchor})"
        elif self.anchor:
            text += f" ({self.anchor})"
        if self.target:
            verdict = "met" if self.met else "MISSED"
            text += f" [target {self.target}: {verdict}]"
        if self.note:
            text += f" -- {self.note}"
        return text


def _fmt(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def emit(figure: Figure, sink: list[Figure] | None = None) -> Figure:
    """Print one figure's line (flushed, so progress shows) and collect it."""
    print(figure.line(), flush=True)
    if sink is not None:
        sink.append(figure)
    return figure


def figures_as_json(figures: list[Figure]) -> list[dict[str, Any]]:
    """The figures as plain dicts (for `--json`)."""
    return [asdict(f) for f in figures]


# --- timing and memory --------------------------------------------------------------------------


@dataclass
class Timer:
    """`with Timer() as t: ...; t.seconds`."""

    seconds: float = 0.0
    _began: float = field(default=0.0, repr=False)

    def __enter__(self) -> Timer:
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._began


def best_of(repeats: int, action: Callable[[], Any], before: Callable[[], Any] | None = None):
    """Run `action` `repeats` times (calling `before` untimed first); return the fastest time."""
    times = []
    for _ in range(repeats):
        if before is not None:
            before()
        with Timer() as timer:
            action()
        times.append(timer.seconds)
    return min(times)


def current_rss_bytes() -> int:
    """This process's resident set size now (Linux /proc; what polars' allocations count in)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """This process's high-water resident set size so far: `VmHWM` of /proc/self/status.

    Not `getrusage().ru_maxrss`: Linux carries the *parent's* high-water mark into a child
    across fork/vfork and exec, so a child spawned by a benchmark process that holds a few
    hundred MB would report at least that much. `VmHWM` belongs to the address space that exec
    created, so it only counts the child's own pages.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class ChildResult:
    """What a benchmark child process reported, and its own peak RSS (`VmHWM`)."""

    payload: dict[str, Any]
    max_rss_bytes: int
    wall_seconds: float


def run_child(module: str, args: dict[str, Any], *, timeout: float = 900.0) -> ChildResult:
    """Run `python -m <module> --child '<json args>'`; return its report and peak RSS.

    The child prints one JSON object as its last stdout line (see `child_report`), which carries
    its own `VmHWM`. Its stderr (Dagster's logs) goes to a temporary file that is shown only
    when the child fails.
    """
    env = _child_env()
    with tempfile.TemporaryFile("w+") as stderr:
        began = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--child", json.dumps(args)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            out = _read_with_timeout(proc, timeout)
        except TimeoutError:
            proc.kill()
            raise
        proc.wait()
        wall = time.perf_counter() - began
        if proc.returncode != 0:
            stderr.seek(0)
            tail = stderr.read()[-4000:]
            raise RuntimeError(f"{module} child failed (exit {proc.returncode}):\n{tail}")
    lines = [line for line in out.splitlines() if line.strip()]
    payload = json.loads(lines[-1])
    return ChildResult(payload, int(payload["vm_hwm"]), wall)


def child_report(payload: dict[str, Any]) -> None:
    """Print a child's result as the JSON line `run_child` reads, with its peak RSS added."""
    print(json.dumps({**payload, "vm_hwm": peak_rss_bytes()}), flush=True)


def _child_env() -> dict[str, str]:
    """This environment, with the repository importable (for `python -m bench.<module>`)."""
    paths = [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def cli_env(sim: Any, store_url: str, events_url: str, home: str) -> dict[str, str]:
    """The environment of a `marketdata` command a benchmark runs as its own process: the
    store at `store_url`, the Dagster instance's storage at `events_url` (a psycopg URL) and
    home under `home`, the simulator `sim` as the API with a budget that never waits."""
    from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url

    return {
        **_child_env(),
        "MARKETDATA_DATABASE_URL": store_url,
        "MARKETDATA_DAGSTER_STORAGE_URL": sqlalchemy_url(events_url),
        "DAGSTER_HOME": os.path.join(home, "dagster_home"),
        "POLYGON_API_KEY": sim.api_key,
        "POLYGON_BASE_URL": sim.base_url,
        "POLYGON_REQUESTS_PER_MINUTE": "60000",
    }


def quiet_logs() -> None:
    """Keep Dagster's INFO lines and library warnings out of the benchmark output."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.getLogger("dagster").setLevel(logging.WARNING)


def _read_with_timeout(proc: subprocess.Popen, timeout: float) -> str:
    import threading

    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    reader.join(timeout)
    if reader.is_alive():
        raise TimeoutError(f"benchmark child did not finish within {timeout:.0f} s")
    return "".join(chunks)


# --- Postgres -----------------------------------------------------------------------------------


class BenchPostgres:
    """A Postgres server for benchmarks; `create_database()` makes a fresh database on it."""

    def __init__(self, server: Any) -> None:
        self.server = server
        #: kind -> name of the template database its new databases are copied from.
        self._templates: dict[str, str] = {}

    def url(self, database: str = "postgres") -> str:
        """psycopg URL of `database` on this server."""
        return self.server.get_uri(database)

    def create_database(self, prefix: str = "bench", *, migrated: bool = True) -> str:
        """A new database, with the `marketdata` schema migrated, or (`migrated=False`, the
        storage of a Dagster instance) with Dagster's tables and nothing of ours; its URL.

        Either is a copy of a template made once per server: Dagster creating its tables on an
        empty database took 1.5-2.5 s, in every benchmark child that opens an instance. No
        figure times that (every one is measured after the instance is open), and the copy is
        the same schema.
        """
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        template = self._template("marketdata" if migrated else "dagster")
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        return self.url(name)

    def _template(self, kind: str) -> str:
        if kind not in self._templates:
            name = f"bench_template_{kind}_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(self.url(), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            if kind == "marketdata":
                from marketdata_pipeline.lib.postgres.ddl import migrate

                with psycopg.connect(self.url(name)) as conn:
                    migrate(conn)
            else:
                with dagster_instance(self.url(name)) as instance:
                    instance.get_runs(limit=1)  # dagster-postgres creates its tables
            self._templates[kind] = name
        return self._templates[kind]

    def drop_database(self, url: str) -> None:
        """Drop a database made by `create_database`."""
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def version(self) -> str:
        """`server_version` of the server."""
        with psycopg.connect(self.url()) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    @contextlib.contextmanager
    def temporary_database(self, prefix: str = "bench", *, migrated: bool = True) -> Iterator[str]:
        """A database (see `create_database`) for the duration of the block."""
        url = self.create_database(prefix, migrated=migrated)
        try:
            yield url
        finally:
            self.drop_database(url)


@contextlib.contextmanager
def temp_postgres() -> Iterator[BenchPostgres]:
    """A pgserver Postgres in a temporary directory, stopped and deleted afterwards."""
    import pgserver

    directory = Path(tempfile.mkdtemp(prefix="md-bench-pg-"))
    server = pgserver.get_server(directory, cleanup_mode="delete")
    try:
        yield BenchPostgres(server)
    finally:
        server.cleanup()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def postgres(existing: BenchPostgres | None) -> Iterator[BenchPostgres]:
    """`existing` when given (shared by `python -m bench`), else a new temporary server."""
    if existing is not None:
        yield existing
        return
    with temp_postgres() as server:
        yield server


# --- Dagster ------------------------------------------------------------------------------------


@contextlib.contextmanager
def dagster_instance(storage_url: str) -> Iterator[Any]:
    """A real Dagster instance whose runs and events live in Postgres (like dagster.yaml's).

    `storage_url` is a psycopg URL of an empty database; dagster-postgres creates its tables.
    """
    import dagster as dg

    from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url

    with tempfile.TemporaryDirectory(prefix="md-bench-dagster-") as home:
        Path(home, "dagster.yaml").write_text(
            "storage:\n"
            "  postgres:\n"
            f"    postgres_url: {json.dumps(sqlalchemy_url(storage_url))}\n"
            "telemetry:\n"
            "  enabled: false\n"
        )
        instance = dg.DagsterInstance.from_config(home)
        try:
            yield instance
        finally:
            instance.dispose()


def candle_resources(sim: Any, database_url: str) -> dict[str, Any]:
    """The candle assets' resources on the simulator and a benchmark database."""
    from marketdata_pipeline.lib.polygon.resource import PolygonResource
    from marketdata_pipeline.lib.postgres.database import PostgresDatabase
    from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager

    database = PostgresDatabase(url=database_url)
    return {
        "polygon": PolygonResource(
            api_key=sim.api_key,
            base_url=sim.base_url,
            requests_per_minute=60_000,
        ),
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }


def candle_run_config(asset: str, symbols: list[str]) -> dict[str, Any]:
    """Run config: these symbols, and Dagster's console logger at WARNING (no event spam)."""
    from marketdata_pipeline.lib.candles.schema import candle_run_config as build

    return build({asset: symbols}, log_level="WARNING")


def candle_asset(name: str = "stock_daily_candles") -> Any:
    """A candle asset of the code location (built from the benchmark's settings)."""
    from marketdata_pipeline.definitions import defs

    return defs.get_assets_def(name)


def range_tags(first: Any, last: Any, asset: str = "stock_daily_candles") -> dict[str, str]:
    """Run tags for one run of `asset` over first..last (inclusive): its first and last
    partition keys inside (stock partitions are NYSE sessions only)."""
    from marketdata_pipeline.lib.candles.schema import ASSET_CLASS_BY_NAME
    from marketdata_pipeline.lib.candles.window import CandleWindow

    window = CandleWindow(first, last).trading_window(ASSET_CLASS_BY_NAME[asset])
    if window is None:
        raise ValueError(f"{asset} has no partition in {first}..{last}")
    return window.run_tags()


def run_phases(instance: Any, run_id: str, wall_seconds: float) -> dict[str, float]:
    """Split a candle run's wall time into our pipeline's work and Dagster's bookkeeping.

    - `pipeline_seconds`: STEP_START to the last STEP_OUTPUT (plan, fetch, normalise,
      validate, checks) plus the IO manager's own `write_seconds`;
    - `dagster_seconds`: the rest of the wall time (run and event-log bookkeeping, chiefly one
      planned and one materialisation event per partition);
    - `partitions`: materialisation events written.
    """
    import dagster as dg

    types = {
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_OUTPUT,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
    }
    start = last_output = None
    write = 0.0
    partitions = 0
    for record in instance.get_records_for_run(run_id, of_type=types, limit=None).records:
        entry = record.event_log_entry
        kind = entry.dagster_event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            start = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_OUTPUT:
            last_output = entry.timestamp
        else:
            partitions += 1
            # The run's figures are on one partition's event (its newest), not on each.
            metadata = entry.dagster_event.event_specific_data.materialization.metadata
            if "write_seconds" in metadata:
                write = float(metadata["write_seconds"].value)
    compute = (last_output - start) if start is not None and last_output is not None else 0.0
    pipeline = compute + write
    return {
        "pipeline_seconds": pipeline,
        "dagster_seconds": max(0.0, wall_seconds - pipeline),
        "partitions": partitions,
        "write_seconds": write,
    }


# --- the simulator in a child process -----------------------------------------------------------


class SimulatorProcess:
    """The project's `SimulatorServer` in a child process, steered over its `/_sim/` API.

    Same operations as the in-process server: `stats()`, `configure()`, `reset()`.
    """

    def __init__(self, *, api_key: str = BENCH_API_KEY, **config: Any) -> None:
        self.api_key = api_key
        self.config = config
        self.base_url = ""
        self._proc: subprocess.Popen | None = None
        self._control: httpx.Client | None = None

    def start(self, timeout: float = 60.0) -> SimulatorProcess:
        """Start the child and wait for its base URL."""
        env = _child_env()
        args = json.dumps({"api_key": self.api_key, **self.config})
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.common", "--serve-simulator", args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        line = self._proc.stdout.readline()
        if not line or time.monotonic() > deadline:
            self.stop()
            raise RuntimeError("the simulator child process did not start")
        self.base_url = json.loads(line)["base_url"]
        self._control = httpx.Client(base_url=self.base_url, timeout=30.0)
        return self

    def stats(self) -> dict[str, Any]:
        """Request counters (no log)."""
        return self._control.get("/_sim/stats", params={"log": "false"}).raise_for_status().json()

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change config fields live."""
        return self._control.post("/_sim/config", json=changes).raise_for_status().json()

    def add_fault(self, **rule: Any) -> None:
        """Add one fault rule (the simulator's `/_sim/faults`)."""
        self._control.post("/_sim/faults", json=rule).raise_for_status()

    def reset(self, **config: Any) -> None:
        """Clear counters, faults and the rate-limit window (config kept, plus `config`)."""
        self._control.post("/_sim/reset", json={"config": config}).raise_for_status()

    def stop(self) -> None:
        """Ask the child to stop (stdin closed), and kill it only if it does not."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._proc is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def __enter__(self) -> SimulatorProcess:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_simulator(args: dict[str, Any]) -> None:
    from polygon_simulator.corporate_actions import NO_CORPORATE_ACTIONS
    from polygon_simulator.server import SimulatorServer

    # The benchmarks' world has no corporate actions unless a benchmark configures some.
    with SimulatorServer(**{**NO_CORPORATE_ACTIONS, **args}) as server:
        print(json.dumps({"base_url": server.base_url}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin


# --- machine ------------------------------------------------------------------------------------


def machine_description(pg: BenchPostgres | None = None) -> dict[str, str]:
    """nproc, RAM, CPU model, Python and (when given) the Postgres version."""
    info = {
        "nproc": str(os.cpu_count()),
        "python": sys.version.split()[0],
    }
    with contextlib.suppress(OSError):
        meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
        info["ram"] = f"{int(meminfo[1]) / 1024 / 1024:.1f} GiB"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    if pg is not None:
        info["postgres"] = pg.version()
    import polars

    info["polars"] = polars.__version__
    info["psycopg"] = psycopg.__version__
    return info


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-simulator":
        _serve_simulator(json.loads(sys.argv[2]))
    else:
        sys.exit("usage: python -m bench.common --serve-simulator '<json config>'")


def module_main(
    doc: str,
    run: Callable[..., list[Figure]],
    *,
    smoke: dict[str, Any],
    full: dict[str, Any],
    argv: list[str] | None = None,
    child: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> list[Figure]:
    """The `python -m bench.<name> [--smoke | --SIZE VALUE ...]` entry point every benchmark
    module shares: each number or text in `full` is also an option (`--symbols 5000`),
    defaulting to its full size; `--smoke` takes the `smoke` sizes instead.

    `child`, when given, is the measurement a benchmark runs in a fresh subprocess (so its peak
    memory is its own): `--child JSON` runs it and reports back instead of the benchmark.
    """
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    for name, default in full.items():
        if isinstance(default, int | float | str):  # cases and lists stay as the module has them
            parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    if child is not None:
        parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if child is not None and args.child:
        child_report(child(json.loads(args.child)))
        sys.exit(0)
    quiet_logs()
    sizes = smoke if args.smoke else {name: getattr(args, name, full[name]) for name in full}
    return run(**sizes)
