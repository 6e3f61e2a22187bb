"""Market scale: a grouped-plan history backfill of N stocks x Y years, end to end vs a bare COPY.

What a user runs for a whole market's history, measured as they would run it: the code location's
`stock_candles_job` (`build_defs(load_settings())`, the stock candles with their split and dividend
companions) for one single-run range (partition-range tags), executed in a fresh child process on
a real Dagster instance built from the repository's `dagster.yaml` (runs and events on Postgres,
the pooled event log, `DAGSTER_EVENT_BATCH_SIZE` at the code location's default), against the
simulator in another process whose grouped endpoint carries a whole market (`universe` tickers a
day, at least 10,000 at full size, of which the run asks for `stocks`). The plan is forced to
grouped (`strategy: grouped`), so the 1x run (where `auto` could pick range for a few hundred
stocks over many years) fetches the same way as the 10x run.

Three runs, each in its own child, over the same years: `stocks // 10` stocks (1x the rows), then
`stocks` stocks twice (10x), warm and cold. For each: wall time, rows/s, requests made (the
simulator's counters) against `plan_requests(...).cost`, Dagster's bookkeeping per partition (the
run's wall time minus every step's own work and the IO manager's write), the child's peak RSS
(`VmHWM`), and the CPU seconds the simulator used during the run. Then, in the same process and
on the same server, the anchor: the cold 10x run's stored rows, exported to a CSV file, COPYed
bare into an empty table shaped like the candle table (indexes included). Targets (the issue's
goals): e2e <= 2x the bare COPY, peak RSS at 10x <= 1.1x the 1x peak, <= 5 ms of Dagster per
partition, requests <= the plan + 10% (here: no retry, so exactly the plan).

Why two end-to-end ratios. A grouped page is the whole market's day (10,000 tickers here),
whatever the run asks for, and the simulator builds it on the same two cores as the run: about
40 ms of CPU a page, 100 s or more for ten years, CPU a real API spends on its own machines.
- `e2e_vs_bare_copy` (**cold**, the figure recorded since the start): the 10x run with the
  simulator's default page cache (192 MB, ~128 whole-market pages), emptied first, so it builds
  every page during the run. It charges the run for the simulator's synthesis.
- `e2e_vs_bare_copy_warm` (**warm**): the cache is sized for the whole window
  (`WARM_CACHE_MB`), the 1x run (which asks for exactly the same pages) fills it, and the 10x
  run that follows is served pre-built pages, like a real API serving stored data. This one
  excludes the simulator's synthesis; what the simulator still spends (serving, gzip) is
  printed with it, as are the pages it served from the cache.

Sizes: `python -m bench.market_scale --stocks 5000 --years 10` (the issue's target, about 12.6 M
bars); `--smoke` for seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.common import (
    BenchPostgres,
    Figure,
    SimulatorProcess,
    Timer,
    child_report,
    emit,
    postgres,
    quiet_logs,
    run_child,
)
from bench.ingest import _copy_sql

FULL = {"stocks": 5_000, "years": 10, "end": "2024-12-31", "universe": 10_000}
SMOKE = {"stocks": 20, "years": 1, "end": "2024-01-31", "universe": 40, "days": 20}
TARGET_E2E_RATIO = 2.0
TARGET_RSS_RATIO = 1.1
TARGET_OVERHEAD_MS = 5.0
TARGET_REQUEST_RATIO = 1.1
# Page-cache bounds of the warm run: a 10,000-ticker grouped page is ~1.14 MB, ten years are
# 2,516 of them (~2.9 GB); the simulator's defaults (cold run) hold ~128.
WARM_CACHE_MB = 4_000
WARM_CACHE_ENTRIES = 4_096
ASSET = "stock_daily_candles"
TABLE = f"marketdata.{ASSET}"


def window(years: int, end: str, days: int | None = None) -> tuple[dt.date, dt.date]:
    """`years` whole calendar years ending on `end` (or `days` days, for the smoke size)."""
    last = dt.date.fromisoformat(end)
    if days is not None:
        return last - dt.timedelta(days=days - 1), last
    return dt.date(last.year - years + 1, 1, 1), last


def _child(args: dict[str, Any]) -> dict[str, Any]:
    """In the child: `stock_candles_job` over the window, as the code location runs it."""
    import shutil

    import dagster as dg

    from bench.common import REPO_ROOT, current_rss_bytes
    from marketdata_pipeline.backfill_request import BackfillRequest
    from marketdata_pipeline.defs.build import build_defs
    from marketdata_pipeline.defs.candles.jobs import STOCK_CANDLES_JOB
    from marketdata_pipeline.lib.candles.schema import candle_run_config
    from marketdata_pipeline.lib.candles.window import CandleWindow
    from marketdata_pipeline.lib.settings import EVENT_BATCH_SIZE, load_settings
    from polygon_simulator import market

    quiet_logs()
    first, last = dt.date.fromisoformat(args["first"]), dt.date.fromisoformat(args["last"])
    names = list(market.stock_universe(args["universe"])[: args["stocks"]])
    home = Path(tempfile.mkdtemp(prefix="md-bench-market-"))
    os.environ.update(
        {
            "POLYGON_API_KEY": args["api_key"],
            "POLYGON_BASE_URL": args["base_url"],
            "POLYGON_REQUESTS_PER_MINUTE": "1000000",
            "MARKETDATA_DATABASE_URL": args["database_url"],
            "MARKETDATA_DAGSTER_STORAGE_URL": args["dagster_url"],
            "MARKETDATA_START_DATE": first.isoformat(),
            "MARKETDATA_HOME": str(home),
            # A caller's page cache outlives the child (bench.resume: a killed run's rerun).
            "MARKETDATA_CACHE_DIR": args.get("cache_dir") or str(home / "cache"),
        }
    )
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    (run,) = BackfillRequest(CandleWindow(first, last), (ASSET,), {ASSET: names}).runs()
    try:
        job = build_defs(load_settings()).resolve_job_def(STOCK_CANDLES_JOB)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            baseline = current_rss_bytes()
            profiler = _profiler()
            with Timer() as timer:
                result = job.execute_in_process(
                    run_config=candle_run_config(
                        {ASSET: names},
                        extra={ASSET: {"strategy": args.get("strategy", "grouped")}},
                        log_level="INFO",
                    ),
                    instance=instance,
                    tags=run.window.run_tags(),
                    raise_on_error=False,
                )
            if profiler is not None:
                profiler.stop()
                # One file per run: the warm and the cold 10x run have the same size.
                case = f"-{args['case']}" if args.get("case") else ""
                out = Path(os.environ["BENCH_PROFILE"]) / f"market_scale-{len(names)}{case}.txt"
                out.write_text(profiler.output_text(unicode=True, show_all=False))
            if not result.success:
                raise RuntimeError(f"the {len(names)}-stock run {first}..{last} failed")
            phases = _phases(instance, result.run_id, timer.seconds)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    with psycopg.connect(args["database_url"]) as conn:
        rows = conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    return {
        "seconds": timer.seconds,
        "rows": rows,
        "baseline_rss": baseline,
        "batch_size": os.environ["DAGSTER_EVENT_BATCH_SIZE"],
        **phases,
    }


def _profiler() -> Any:
    """A started pyinstrument profiler when `BENCH_PROFILE` names a directory (the child's
    main thread: the step and the IO manager), else None."""
    if not os.environ.get("BENCH_PROFILE"):
        return None
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005)
    profiler.start()
    return profiler


def _phases(instance: Any, run_id: str, wall: float) -> dict[str, float]:
    """Every step's own work (STEP_START to its last STEP_OUTPUT) plus the candle write; the
    rest of the wall time is Dagster's; partitions = the candle asset's materialisations."""
    import dagster as dg

    types = {
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_OUTPUT,
        dg.DagsterEventType.ASSET_MATERIALIZATION,
    }
    starts: dict[str, float] = {}
    outputs: dict[str, float] = {}
    partitions = 0
    write = 0.0
    for record in instance.get_records_for_run(run_id, of_type=types, limit=None).records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_OUTPUT:
            outputs[event.step_key] = entry.timestamp
        elif event.asset_key == dg.AssetKey(ASSET):
            partitions += 1
            # The run's figures are on one partition's event (its newest), not on each.
            metadata = event.event_specific_data.materialization.metadata
            if "write_seconds" in metadata:
                write = float(metadata["write_seconds"].value)
    steps = {k: outputs[k] - starts[k] for k in starts if k in outputs}
    pipeline = sum(steps.values()) + write
    return {
        "pipeline_seconds": pipeline,
        "candle_step_seconds": steps.get(ASSET, 0.0),
        "write_seconds": write,
        "dagster_seconds": max(0.0, wall - pipeline),
        "partitions": partitions,
    }


def bare_copy_file(url: str, path: Path, table: str) -> float:
    """Seconds for one committed `COPY ... FROM STDIN (FORMAT csv)` of the file into `table`."""
    statement = _copy_sql(sql.SQL(table))
    with (
        psycopg.connect(url, autocommit=True) as conn,
        open(path, "rb") as source,
        Timer() as timer,
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(statement) as copy,
    ):
        while block := source.read(1 << 20):
            copy.write(block)
    return timer.seconds


def _export(url: str, path: Path, table: str = TABLE) -> None:
    """The candle table's rows as CSV in `path` (streamed: the parent never holds them)."""
    from marketdata_pipeline.lib.candles.schema import CANDLE_COLUMNS

    columns = sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS)
    statement = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv)").format(
        columns, sql.SQL(table)
    )
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        open(path, "wb") as out,
        cur.copy(statement) as copy,
    ):
        for block in copy:
            out.write(block)


def _planned(
    stocks: int, universe: int, first: dt.date, last: dt.date, strategy: str = "grouped"
) -> Any:
    from marketdata_pipeline.lib.polygon.planner import plan_requests
    from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
    from polygon_simulator import market

    names = market.stock_universe(universe)[:stocks]
    symbols = [parse_symbol(n, AssetClass.STOCK) for n in names]
    return plan_requests(AssetClass.STOCK, symbols, first, last, force=strategy)


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    stocks: int = FULL["stocks"],
    years: int = FULL["years"],
    end: str = FULL["end"],
    universe: int = FULL["universe"],
    days: int | None = None,
    timeout: float = 3 * 3600.0,
) -> list[Figure]:
    """Measure and print the market-scale figures; return them."""
    universe = max(universe, stocks)
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, stocks=stocks, years=years, end=end, universe=universe,
                       days=days, timeout=timeout)  # fmt: skip
    before = _universe_size(sim.configure())  # no change: the current config
    sim.configure(stock_universe_size=universe)
    try:
        return _measure(pg, sim, stocks, universe, window(years, end, days), timeout)
    finally:
        sim.configure(stock_universe_size=before)


def _universe_size(config: Any) -> int:
    """`stock_universe_size` of a config as either simulator returns it (model or dict)."""
    return int(_field(config, "stock_universe_size"))


def _measure(
    pg: BenchPostgres | None,
    sim: Any,
    stocks: int,
    universe: int,
    span_days: tuple[dt.date, dt.date],
    timeout: float,
) -> list[Figure]:
    """1x (filling a cache sized for the window), 10x warm (served from it), 10x cold (the
    default cache, emptied first), then the bare COPY of the cold run's rows."""
    from polygon_simulator.state import SimulatorConfig

    first, last = span_days
    span = f"{first}..{last}"
    figures: list[Figure] = []
    defaults = SimulatorConfig()
    # (case, stocks, cache bounds before the run: None = keep what the previous run left)
    cases: list[tuple[str, int, tuple[int, int] | None]] = [
        ("1x", max(1, stocks // 10), (WARM_CACHE_MB, WARM_CACHE_ENTRIES)),
        ("10x_warm", stocks, None),
        ("10x", stocks, (defaults.body_cache_mb, defaults.body_cache_entries)),
    ]
    before = sim.configure()  # no change: the current config, to restore at the end
    results: dict[str, tuple[Any, dict[str, Any], Any, float | None]] = {}
    try:
        with postgres(pg) as server:
            for name, count, bounds in cases:
                if bounds is not None:
                    sim.configure(body_cache_mb=0)  # applies at once: the cache is emptied
                    sim.configure(body_cache_mb=bounds[0], body_cache_entries=bounds[1])
                with run_databases(server, sim, "market") as (url, dagster_url, sim_cpu):
                    child = run_child(
                        "bench.market_scale",
                        {
                            "case": name,
                            "stocks": count,
                            "universe": universe,
                            "first": first.isoformat(),
                            "last": last.isoformat(),
                            "base_url": sim.base_url,
                            "api_key": sim.api_key,
                            "database_url": url,
                            "dagster_url": dagster_url,
                        },
                        timeout=timeout,
                    )
                    stats = {**sim.stats(), "cpu_seconds": cpu_seconds(sim) - sim_cpu}
                    plan = _planned(count, universe, first, last)
                    copy_s = anchor_copy(url) if name == "10x" else None
                    results[name] = (child, stats, plan, copy_s)
    finally:
        sim.configure(
            body_cache_mb=_field(before, "body_cache_mb"),
            body_cache_entries=_field(before, "body_cache_entries"),
        )
    _emit_all(results, dict((n, c) for n, c, _ in cases), span, universe, figures)
    return figures


@contextmanager
def run_databases(server: BenchPostgres, sim: Any, name: str) -> Iterator[tuple[str, str, float]]:
    """A fresh candle store and Dagster storage for one child run, the simulator's counters
    reset: (store URL, storage URL for dagster.yaml, the simulator's CPU seconds so far)."""
    with (
        server.temporary_database(name) as url,
        server.temporary_database(f"{name}_dagster", migrated=False) as dagster_url,
    ):
        sim.reset()
        yield url, _sqlalchemy(dagster_url), cpu_seconds(sim)


def _field(config: Any, name: str) -> Any:
    """A config field as either simulator returns its config (model or dict)."""
    return config[name] if isinstance(config, dict) else getattr(config, name)


def cpu_seconds(sim: Any) -> float:
    """CPU seconds the simulator's child process has used so far (0 for an in-process one):
    it shares the machine's cores with the run, unlike a remote API."""
    proc = getattr(sim, "_proc", None)
    if proc is None:
        return 0.0
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sqlalchemy(url: str) -> str:
    from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url

    return sqlalchemy_url(url)


def anchor_copy(url: str, table: str = TABLE) -> float:
    """Bare COPY of the run's stored rows (of `table`) into an empty table like it."""
    anchor = "public.copy_anchor"
    with tempfile.TemporaryDirectory(prefix="md-bench-copy-") as tmp:
        path = Path(tmp) / "rows.csv"
        _export(url, path, table)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {anchor} (LIKE {table} INCLUDING ALL)")
            # Start from the same state as the run did: no dirty pages of the export to flush.
            conn.execute("CHECKPOINT")
        seconds = bare_copy_file(url, path, anchor)
        with psycopg.connect(url) as conn:
            copied = conn.execute(f"SELECT count(*) FROM {anchor}").fetchone()[0]
            stored = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        if copied != stored:
            raise RuntimeError(f"bare COPY stored {copied} rows, the run {stored}")
    return seconds


def _emit_all(results: dict, cases: dict, span: str, universe: int, figures: list) -> None:
    base_rss = results["1x"][0].max_rss_bytes
    for name in ("1x", "10x", "10x_warm"):
        child, stats, plan, _ = results[name]
        _emit_case(name, cases[name], child, stats, plan, base_rss, span, universe, figures)
    copy_s = results["10x"][3]
    cold = results["10x"][0].payload
    emit(
        Figure(
            "market_scale.bare_copy",
            copy_s,
            "s",
            note=f"the cold 10x run's {cold['rows']:,} rows into an empty table like "
            f"{TABLE}, indexes included; {cold['rows'] / copy_s:,.0f} rows/s",
        ),
        figures,
    )
    for name, figure, what in (
        (
            "10x",
            "market_scale.e2e_vs_bare_copy",
            "COLD: the simulator built every page during the run, on the same cores",
        ),
        (
            "10x_warm",
            "market_scale.e2e_vs_bare_copy_warm",
            "WARM: pages pre-built (by the 1x run) and served from the simulator's cache, so "
            "its page synthesis is excluded",
        ),
    ):
        _, stats, _, _ = results[name]
        seconds = results[name][0].payload["seconds"]
        e2e = seconds / copy_s
        emit(
            Figure(
                figure,
                e2e,
                "x",
                target=f"<= {TARGET_E2E_RATIO:g}x",
                met=e2e <= TARGET_E2E_RATIO,
                note=f"{what}; {seconds:.1f} s end to end / {copy_s:.1f} s bare COPY; "
                f"{_cache_note(stats)}",
            ),
            figures,
        )


def _cache_note(stats: dict[str, Any]) -> str:
    """The simulator's CPU during the run and how its pages were served."""
    cache = stats.get("body_cache") or {}
    return (
        f"the simulator used {stats['cpu_seconds']:.1f} s of CPU during this run; "
        f"pages served from its cache {cache.get('hits', 0):,}, built "
        f"{cache.get('misses', 0):,} (cache bound {cache.get('max_bytes', 0) / 1e6:,.0f} MB)"
    )


def _emit_case(
    name: str,
    count: int,
    child: Any,
    stats: dict[str, Any],
    plan: Any,
    base_rss: int,
    span: str,
    universe: int,
    figures: list,
) -> None:
    """The run, requests, overhead and peak-RSS figures of one child."""
    out = child.payload
    size = f"{count:,} stocks x {span} ({out['rows']:,} rows)"
    emit(
        Figure(
            f"market_scale.{name}.run",
            out["seconds"],
            "s",
            note=f"{size}, {out['rows'] / out['seconds']:,.0f} rows/s end to end; pipeline "
            f"{out['pipeline_seconds']:.1f} s (candle step {out['candle_step_seconds']:.1f} s, "
            f"write {out['write_seconds']:.1f} s), DAGSTER_EVENT_BATCH_SIZE="
            f"{out['batch_size']}; {_cache_note(stats)}",
        ),
        figures,
    )
    grouped = sum(v for k, v in stats["by_kind"].items() if "grouped" in k)
    ratio = grouped / plan.cost if plan.cost else 0.0
    emit(
        Figure(
            f"market_scale.{name}.requests",
            grouped,
            "grouped requests",
            ratio=ratio,
            phrase="{ratio:.3f}x the plan",
            target=f"<= {TARGET_REQUEST_RATIO}x the plan",
            met=ratio <= TARGET_REQUEST_RATIO,
            note=f"plan: {plan.strategy}, {plan.cost:,} requests; all requests "
            f"{stats['requests']:,} ({json.dumps(stats['by_kind'], sort_keys=True)}); "
            f"grouped endpoint carries {universe:,} tickers",
        ),
        figures,
    )
    per_ms = out["dagster_seconds"] / max(out["partitions"], 1) * 1000
    emit(
        Figure(
            f"market_scale.{name}.overhead_per_partition",
            per_ms,
            "ms",
            target=f"<= {TARGET_OVERHEAD_MS:g} ms",
            met=per_ms <= TARGET_OVERHEAD_MS,
            note=f"Dagster {out['dagster_seconds']:.1f} s of {out['seconds']:.1f} s over "
            f"{out['partitions']} partitions",
        ),
        figures,
    )
    rss_ratio = child.max_rss_bytes / base_rss
    emit(
        Figure(
            f"market_scale.{name}.peak_rss",
            child.max_rss_bytes / 1e6,
            "MB",
            ratio=rss_ratio,
            phrase="{ratio:.2f}x the 1x run",
            target=f"<= {TARGET_RSS_RATIO}x" if name == "10x" else None,
            met=rss_ratio <= TARGET_RSS_RATIO if name == "10x" else None,
            note=f"VmHWM of the process that ran the job; {out['baseline_rss'] / 1e6:.0f} MB "
            "before the run",
        ),
        figures,
    )


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.market_scale [--smoke | --stocks N --years Y]`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    parser.add_argument("--stocks", type=int, default=FULL["stocks"])
    parser.add_argument("--years", type=int, default=FULL["years"])
    parser.add_argument("--end", default=FULL["end"])
    parser.add_argument("--universe", type=int, default=FULL["universe"])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_report(_child(json.loads(args.child)))
        sys.exit(0)
    quiet_logs()
    if args.smoke:
        return run(**SMOKE)
    return run(stocks=args.stocks, years=args.years, end=args.end, universe=args.universe)


if __name__ == "__main__":
    main()
