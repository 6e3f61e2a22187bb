"""The `marketdata` command line.

    marketdata symbols add SYMBOL... [--asset-class stock|crypto]
    marketdata symbols list [--json]
    marketdata symbols remove SYMBOL... [--asset-class stock|crypto]
    marketdata backfill --start YYYY-MM-DD --end YYYY-MM-DD [--asset A] [--symbols S ...]
    marketdata simulator [--port N]
    marketdata db url [--dagster] [--reveal]
    marketdata demo          (what `make demo` runs)
    marketdata dev           (what `make dev` runs)

Exit codes scripts can rely on: 0 success, 1 the run failed, 2 invalid input (symbols, dates),
3 configuration (database, API key, URLs). User mistakes print one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from marketdata_pipeline.lib.errors import ConfigError, InputError, MarketdataError
from marketdata_pipeline.lib.settings import redact_url

EXIT_RUN_FAILED = 1
DEMO_STOCKS = ("AAPL", "MSFT", "NVDA", "SPY")
DEMO_CRYPTO = ("BTCUSD", "ETHUSD")
DEMO_DAYS = 30
#: The simulator has no quota, so the demo does not wait on the free tier's 5/minute.
SIMULATOR_REQUESTS_PER_MINUTE = "600"


def _print_err(message: str) -> None:
    print(f"marketdata: error: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse with our exit code for usage errors (2, as for any invalid input)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        """Print usage and the problem, then exit with the invalid-input status."""
        self.print_usage(sys.stderr)
        _print_err(message)
        raise SystemExit(InputError.exit_code)


# -- symbols -------------------------------------------------------------------------------


def cmd_symbols_add(args: argparse.Namespace) -> int:
    """Track symbols (validated all-or-nothing before anything is written)."""
    from marketdata_pipeline.lib.symbols import parse_symbols

    # Validate first: a refusal then needs none of the heavy imports below (Dagster).
    symbols = parse_symbols(args.symbols, args.asset_class)
    from marketdata_pipeline.lib.postgres.database import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        changes = add_symbols(conn, symbols)
    for change in changes:
        note = {
            "added": "added; the tracked_symbols_sensor will backfill its history",
            "reactivated": "re-activated; the sensor will backfill its history",
            "already tracked": "already tracked, nothing to do",
        }[change.outcome]
        print(f"{change.symbol.symbol} ({change.symbol.asset_class}): {note}")
    return 0


def cmd_symbols_remove(args: argparse.Namespace) -> int:
    """Deactivate symbols; their candles stay in the tables."""
    from marketdata_pipeline.lib.symbols import parse_symbol

    # Validate every argument before touching the table (and before the heavy imports).
    parsed = [parse_symbol(raw, args.asset_class) for raw in args.symbols]
    from marketdata_pipeline.lib.postgres.database import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import find_symbols, remove_symbols
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        targets = []
        for raw, sym in zip(args.symbols, parsed, strict=True):
            if args.asset_class is None and not raw.upper().startswith("X:"):
                # Without --asset-class, `BTCUSD` means whichever class tracks it.
                found = find_symbols(conn, raw)
                targets.extend(found or [sym])
            else:
                targets.append(sym)
        changes = remove_symbols(conn, targets)
    for change in changes:
        note = {
            "removed": "removed (no longer fetched; stored candles kept)",
            "already removed": "already removed",
            "not tracked": "not tracked, nothing to do",
        }[change.outcome]
        print(f"{change.symbol.symbol} ({change.symbol.asset_class}): {note}")
    return 0


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


def cmd_symbols_list(args: argparse.Namespace) -> int:
    """Print tracked symbols and their status, as a table or JSON."""
    from marketdata_pipeline.lib.postgres.database import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import list_symbols
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        rows = list_symbols(conn)
    if args.json:
        print(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], indent=2))
        return 0
    if not rows:
        print("no tracked symbols yet: add some with `marketdata symbols add AAPL X:BTCUSD`")
        return 0
    print(f"{'SYMBOL':<10} {'CLASS':<7} {'ACTIVE':<7} {'STATUS':<8} {'LAST DAY':<11} ERROR")
    for r in rows:
        print(
            f"{r['symbol']:<10} {r['asset_class']:<7} {'yes' if r['active'] else 'no':<7} "
            f"{r['status']:<8} {r['last_success_day'] or '-'!s:<11} {r['last_error'] or ''}"
        )
    return 0


# -- backfill ------------------------------------------------------------------------------


def run_backfill(
    start_text: str, end_text: str, assets: Sequence[str] | None, symbols: Sequence[str] | None
) -> int:
    """Validate, run through Dagster, print the summary; return the exit code."""
    from marketdata_pipeline.backfill import (
        BackfillRequest,
        check_plausible,
        resolve_request_symbols,
        run_config_for,
        summarise,
        validate_range,
    )
    from marketdata_pipeline.lib.settings import load_settings

    settings = load_settings()
    start, end = validate_range(start_text, end_text, first=settings.start_date)
    if not settings.api_key:
        # Refuse here, before anything runs: Dagster would otherwise fail resolving the
        # EnvVar with a config-error traceback.
        raise ConfigError(
            "no Polygon API key: set POLYGON_API_KEY (or MASSIVE_API_KEY); without a key, "
            "`marketdata demo` and `marketdata dev` use the local simulator"
        )
    chosen = tuple(assets) if assets else ("stock_daily_candles", "crypto_daily_candles")
    check_plausible(symbols or ())  # before any database or Dagster work
    from marketdata_pipeline.lib.postgres.database import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import tracked_classes
    from marketdata_pipeline.runtime import prepare

    runtime = prepare()
    tracked = {}
    if symbols:
        with connect(runtime.database_url) as conn:
            tracked = tracked_classes(conn)
    request = BackfillRequest(
        start, end, chosen, resolve_request_symbols(list(symbols or []), chosen, tracked)
    )
    if request.symbols is not None:
        chosen = tuple(a for a in chosen if a in request.symbols)
    print(
        f"backfill {start}..{end} of {', '.join(chosen)} through Dagster "
        f"(instance {runtime.dagster_home})",
        flush=True,
    )

    import dagster as dg

    from marketdata_pipeline.definitions import defs
    from marketdata_pipeline.defs.candles.partitions import range_tags
    from marketdata_pipeline.defs.corporate_actions.assets import STOCK_COMPANION_KEYS

    selection = [dg.AssetKey(a) for a in chosen]
    if "stock_daily_candles" in chosen:
        selection += STOCK_COMPANION_KEYS  # learn splits and repair history in the same run
    job = defs.resolve_job_def("candles_job")
    result = job.execute_in_process(
        run_config=run_config_for(request),
        instance=dg.DagsterInstance.get(),
        tags={**range_tags(start, end), "marketdata/trigger": "cli-backfill"},
        asset_selection=selection,
        raise_on_error=False,
    )
    print(f"\nrun {result.run_id}: {'SUCCESS' if result.success else 'FAILED'}")
    for line in summarise(runtime.database_url, start, end, chosen):
        print(line)
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data:
                error = event.step_failure_data.error
                print(f"  step {event.step_key} failed: {error.message.strip() if error else ''}")
    return 0 if result.success else EXIT_RUN_FAILED


def cmd_backfill(args: argparse.Namespace) -> int:
    """`marketdata backfill` entry point."""
    return run_backfill(args.start, args.end, [args.asset] if args.asset else None, args.symbols)


# -- simulator, db, demo, dev --------------------------------------------------------------


def cmd_simulator(args: argparse.Namespace) -> int:
    """Run the local Polygon-compatible simulator in the foreground."""
    from polygon_simulator.server import SIMULATOR_API_KEY, serve

    serve(host=args.host, port=args.port, api_key=args.key or SIMULATOR_API_KEY)
    return 0


def cmd_db_url(args: argparse.Namespace) -> int:
    """Print the database URL in use (starting the embedded server if needed)."""
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    url = runtime.dagster_storage_url if args.dagster else runtime.database_url
    print(url if args.reveal else redact_url(url))
    return 0


def _start_simulator_if_no_key():
    """When no API key is set, start the simulator in this process and point the env at it."""
    from marketdata_pipeline.lib.settings import load_settings

    if load_settings().api_key:
        return None
    from polygon_simulator.server import SimulatorServer

    server = SimulatorServer()
    server.__enter__()
    os.environ["POLYGON_API_KEY"] = server.api_key
    os.environ["POLYGON_BASE_URL"] = server.base_url
    os.environ.setdefault("POLYGON_REQUESTS_PER_MINUTE", SIMULATOR_REQUESTS_PER_MINUTE)
    print(
        f"POLYGON_API_KEY is not set: using the local SIMULATOR at {server.base_url} "
        "(simulated prices, not market data)",
        flush=True,
    )
    return server


def cmd_demo(args: argparse.Namespace) -> int:
    """Set up, add the demo universe, materialise recent days, print what landed."""
    from marketdata_pipeline.lib.calendar import last_complete_day
    from marketdata_pipeline.lib.postgres.database import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
    from marketdata_pipeline.lib.symbols import parse_symbols
    from marketdata_pipeline.runtime import prepare

    server = _start_simulator_if_no_key()
    try:
        runtime = prepare()
        symbols = parse_symbols(list(DEMO_STOCKS)) + parse_symbols(list(DEMO_CRYPTO), "crypto")
        with connect(runtime.database_url) as conn:
            add_symbols(conn, symbols)
        print(f"tracking {', '.join(s.symbol for s in symbols)}", flush=True)
        end = last_complete_day()
        start = max(end - dt.timedelta(days=args.days - 1), runtime.settings.start_date)
        code = run_backfill(start.isoformat(), end.isoformat(), None, None)
        print(
            f"\nThe candles are in Postgres: {redact_url(runtime.database_url)}\n"
            "  tables marketdata.stock_daily_candles, marketdata.crypto_daily_candles\n"
            '  try: psql "$(.venv/bin/marketdata db url)" -c '
            "'select * from marketdata.stock_daily_candles order by day desc limit 5'\n"
            "Next: `make dev` opens the Dagster UI at http://127.0.0.1:3000"
        )
        return code
    finally:
        if server is not None:
            server.__exit__(None, None, None)


#: How long `dagster dev` gets to stop its webserver, daemon and code server after Ctrl-C
#: (it waits up to 60 s for each of its children itself) before the rest is killed.
DEV_SHUTDOWN_SECONDS = 90


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when no process of the group is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _stop_group(pgid: int) -> None:
    """Make sure no process of the group survives: SIGINT, then SIGTERM, then SIGKILL.

    What is left once `dagster dev` is gone is mostly runs in flight. SIGINT first, as a Ctrl-C
    under plain `dagster dev` would: a run worker then records the run as failed ("execution was
    interrupted") instead of staying STARTED in the instance, holding a slot of the run queue.
    """
    for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 5.0)):
        if not _signal_group(pgid, sig):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if not _signal_group(pgid, 0):
                return
    _signal_group(pgid, signal.SIGKILL)


def _wait_until_serving(url: str, process: subprocess.Popen) -> None:
    """Print once the UI answers (Dagster takes a few seconds to load the code location)."""
    import httpx

    while process.poll() is None:
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                print(f"Dagster UI ready: {url}  (Ctrl-C stops everything)", flush=True)
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)


def cmd_dev(args: argparse.Namespace) -> int:
    """Run the Dagster webserver and daemon (via `dagster dev`) on the embedded defaults.

    `dagster dev` runs in its own session, so a Ctrl-C in the terminal reaches only this
    process, which then asks `dagster dev` (one SIGINT) to stop its webserver, daemon and code
    server in order. If they all got the terminal's SIGINT at once, `dagster dev` 1.13 would
    restart the code server that exited first and leave that copy running. Whatever is still
    alive in its process group afterwards (runs in flight) is then interrupted, terminated,
    killed, in that order (`_stop_group`). The embedded Postgres stays up on purpose: every
    command reuses it.
    """
    import threading

    from marketdata_pipeline.runtime import WORKSPACE_FILE, prepare

    server = _start_simulator_if_no_key()
    process: subprocess.Popen | None = None
    # SIGINT too: a shell starting us in the background may have set it to "ignore".
    previous = {
        sig: signal.signal(sig, signal.default_int_handler)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        runtime = prepare()
        url = f"http://{args.host}:{args.port}"
        print(
            f"Dagster UI: {url}  (webserver + daemon; instance {runtime.dagster_home}, "
            "runs and events in Postgres). Ctrl-C stops everything.",
            flush=True,
        )
        command = [
            os.path.join(os.path.dirname(sys.executable), "dagster"),
            "dev",
            "-w",
            str(WORKSPACE_FILE),
            "-h",
            args.host,
            "-p",
            str(args.port),
        ]
        process = subprocess.Popen(command, start_new_session=True)
        threading.Thread(target=_wait_until_serving, args=(url, process), daemon=True).start()
        try:
            return process.wait()
        except KeyboardInterrupt:
            print("\nstopping Dagster (webserver, daemon, code server)...", flush=True)
            process.send_signal(signal.SIGINT)
            # A second Ctrl-C, or a shutdown that takes too long: the group is killed below.
            with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
                process.wait(timeout=DEV_SHUTDOWN_SECONDS)
            return 130
    finally:
        if process is not None:
            try:
                _stop_group(process.pid)
            except KeyboardInterrupt:  # another Ctrl-C: no more grace
                _signal_group(process.pid, signal.SIGKILL)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.__exit__(None, None, None)


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `marketdata` command."""
    parser = _Parser(
        prog="marketdata", description="Daily OHLCV candles from Polygon into Postgres."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    symbols = sub.add_parser("symbols", help="manage the tracked symbols")
    symbols_sub = symbols.add_subparsers(
        dest="symbols_command", required=True, parser_class=_Parser
    )
    add = symbols_sub.add_parser("add", help="track symbols (their history gets backfilled)")
    add.add_argument("symbols", nargs="+", metavar="SYMBOL")
    add.add_argument(
        "--asset-class",
        choices=["stock", "crypto"],
        default=None,
        help="default stock; X:BTCUSD implies crypto",
    )
    add.set_defaults(func=cmd_symbols_add)
    lst = symbols_sub.add_parser("list", help="list tracked symbols and their status")
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    lst.set_defaults(func=cmd_symbols_list)
    rm = symbols_sub.add_parser("remove", help="stop tracking symbols (history is kept)")
    rm.add_argument("symbols", nargs="+", metavar="SYMBOL")
    rm.add_argument("--asset-class", choices=["stock", "crypto"], default=None)
    rm.set_defaults(func=cmd_symbols_remove)

    backfill = sub.add_parser("backfill", help="materialise a date range through Dagster")
    backfill.add_argument("--start", required=True, help="first day, YYYY-MM-DD (inclusive)")
    backfill.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    backfill.add_argument("--asset", choices=["stock_daily_candles", "crypto_daily_candles"])
    backfill.add_argument(
        "--symbols",
        nargs="+",
        metavar="SYMBOL",
        help="only these symbols (default: the active tracked ones)",
    )
    backfill.set_defaults(func=cmd_backfill)

    sim = sub.add_parser("simulator", help="run the local Polygon-compatible simulator")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--key", default=None, help="API key the simulator accepts")
    sim.set_defaults(func=cmd_simulator)

    db = sub.add_parser("db", help="database helpers")
    db_sub = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    url = db_sub.add_parser("url", help="print the database URL in use")
    url.add_argument("--dagster", action="store_true", help="the Dagster instance storage URL")
    url.add_argument("--reveal", action="store_true", help="print the password too")
    url.set_defaults(func=cmd_db_url)

    demo = sub.add_parser("demo", help="set up and materialise recent days of demo symbols")
    demo.add_argument("--days", type=int, default=DEMO_DAYS)
    demo.set_defaults(func=cmd_demo)

    dev = sub.add_parser("dev", help="Dagster UI and daemon on the embedded defaults")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(func=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `marketdata` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MarketdataError as exc:
        _print_err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
