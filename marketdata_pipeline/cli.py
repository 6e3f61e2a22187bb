"""The `marketdata` command line: a thin layer of click commands over the project's functions.

Each command parses its arguments, reads the settings once (`runtime.prepare`), and calls a
function in `backfill_*.py`, `devserver.py`, the store (`lib/postgres/`) or the simulator. Exit
codes scripts can rely on: 0 success, 1 the run failed, 2 invalid input (symbols, dates),
3 configuration (database, API key, URLs), 130 interrupted (Ctrl-C). User mistakes print one
line on stderr, no traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from contextlib import nullcontext

import click

from marketdata_pipeline import cli_symbols
from marketdata_pipeline.lib.asset_names import CANDLE_ASSET_NAMES
from marketdata_pipeline.lib.errors import ConfigError, InputError, MarketdataError
from marketdata_pipeline.lib.settings import redact_url

EXIT_RUN_FAILED = 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a command stopped by Ctrl-C
DEMO_STOCKS = ("AAPL", "MSFT", "NVDA", "SPY")
DEMO_CRYPTO = ("BTCUSD", "ETHUSD")
DEMO_DAYS = 30
ASSET_CLASSES = click.Choice(["stock", "crypto"])


def _print_err(message: str) -> None:
    click.echo(f"marketdata: error: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Daily OHLCV candles from Polygon (Massive) into Postgres, through Dagster.

    \b
    Quick start:
      marketdata symbols add AAPL X:BTCUSD
      marketdata backfill --start 2024-01-02 --end 2024-01-31
      marketdata dev
    """


# -- symbols -------------------------------------------------------------------------------


@cli.group()
def symbols() -> None:
    """Manage the tracked symbols (the sensor backfills new ones)."""


@symbols.command("add")
@click.argument("names", nargs=-1, metavar="SYMBOL...")
@click.option("--asset-class", type=ASSET_CLASSES, help="Default stock; X:BTCUSD implies crypto.")
@click.option("--market", help="Track a rule instead: every ticker of this market (stocks).")
@click.option("--type", "types", multiple=True, help="With --market: only these types (CS, ETF).")
@click.option("--include-delisted", is_flag=True, help="With --market: delisted ones too.")
def symbols_add(
    names: tuple[str, ...],
    asset_class: str | None,
    market: str | None,
    types: tuple[str, ...],
    include_delisted: bool,
) -> None:
    """Track symbols (validated all-or-nothing before anything is written), or a rule.

    \b
    Examples:
      marketdata symbols add AAPL MSFT
      marketdata symbols add X:BTCUSD
      marketdata symbols add ETHGBP --asset-class crypto
      marketdata symbols add --market stocks --type CS --type ETF --include-delisted
    """
    if market is not None or types or include_delisted:
        if names or market is None:
            raise InputError("a rule takes --market (and --type, --include-delisted), no SYMBOL")
        return cli_symbols.add_rule(market, types, include_delisted)
    if not names:
        raise InputError("name a SYMBOL to track, or a rule with --market stocks")
    from marketdata_pipeline.lib.symbols import parse_symbol, parse_symbols

    # Validate first: a refusal then needs none of the heavy imports below.
    parsed = parse_symbols(list(names), asset_class)
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols, refuse_ambiguous_add
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        if asset_class is None:
            refuse_ambiguous_add(conn, list(names), [parse_symbol(raw) for raw in names])
        changes = add_symbols(conn, parsed)
    notes = {
        "added": "added; the tracked_symbols_sensor will backfill its history",
        "reactivated": "re-activated; the sensor will backfill its history",
        "already tracked": "already tracked, nothing to do",
    }
    for change in changes:
        click.echo(f"{change.symbol.symbol} ({change.symbol.asset_class}): {notes[change.outcome]}")


@symbols.command("remove")
@click.argument("names", nargs=-1, metavar="SYMBOL...")
@click.option("--asset-class", type=ASSET_CLASSES, help="Which class, when both track it.")
@click.option("--rule", "rule_ids", type=int, multiple=True, help="Remove a rule (its id).")
def symbols_remove(
    names: tuple[str, ...], asset_class: str | None, rule_ids: tuple[int, ...]
) -> None:
    """Stop tracking symbols or rules; their stored candles stay in the tables.

    \b
    Examples:
      marketdata symbols remove MSFT
      marketdata symbols remove BTCUSD --asset-class crypto
      marketdata symbols remove --rule 1
    """
    if rule_ids:
        cli_symbols.remove_rules(rule_ids)
    if not names:
        if not rule_ids:
            raise InputError("name a SYMBOL to stop tracking, or a rule with --rule ID")
        return
    from marketdata_pipeline.lib.symbols import parse_symbol

    parsed = [parse_symbol(raw, asset_class) for raw in names]
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import remove_symbols, resolve_removal
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        targets = []
        for raw, sym in zip(names, parsed, strict=True):
            if asset_class is None and not raw.upper().startswith("X:"):
                # Without --asset-class, `BTCUSD` means whichever class tracks it.
                targets.extend(resolve_removal(conn, raw, sym))
            else:
                targets.append(sym)
        changes = remove_symbols(conn, targets)
    notes = {
        "removed": "removed (no longer fetched; stored candles kept)",
        "already removed": "already removed",
        "not tracked": "not tracked, nothing to do",
    }
    for change in changes:
        click.echo(f"{change.symbol.symbol} ({change.symbol.asset_class}): {notes[change.outcome]}")


def _jsonable(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


@symbols.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects.")
def symbols_list(as_json: bool) -> None:
    """Print tracked symbols and their status.

    \b
    Examples:
      marketdata symbols list
      marketdata symbols list --json
    """
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import list_symbols
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        rows = list_symbols(conn)
        rules = [] if as_json else cli_symbols.rule_lines(conn)
    if as_json:
        click.echo(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], indent=2))
        return
    for line in rules:
        click.echo(line)
    if not rows:
        if not rules:
            click.echo(
                "no tracked symbols yet: add some with `marketdata symbols add AAPL X:BTCUSD`"
            )
        return
    click.echo(f"{'SYMBOL':<10} {'CLASS':<7} {'ACTIVE':<7} {'STATUS':<8} {'LAST DAY':<11} ERROR")
    for r in rows:
        click.echo(
            f"{r['symbol']:<10} {r['asset_class']:<7} {'yes' if r['active'] else 'no':<7} "
            f"{r['status']:<8} {r['last_success_day'] or '-'!s:<11} {r['last_error'] or ''}"
        )


symbols.add_command(cli_symbols.resolve)


# -- backfill ------------------------------------------------------------------------------


def _backfill_request(database_url: str, window, chosen: tuple[str, ...], raw_symbols):
    """The request of a backfill: explicit symbols resolved against the tracked ones, else the
    tracked symbols of each chosen asset class that has any; and the lines saying which
    classes get no run because nothing of theirs is tracked."""
    from marketdata_pipeline.backfill_request import (
        BackfillRequest,
        resolve_request_symbols,
        without_untracked_classes,
    )
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import tracked_classes

    with connect(database_url) as conn:
        tracked = tracked_classes(conn) if raw_symbols else {}
        request = BackfillRequest(
            window, chosen, resolve_request_symbols(list(raw_symbols), chosen, tracked)
        )
        if request.symbols is not None:
            return BackfillRequest(
                window, tuple(a for a in chosen if a in request.symbols), request.symbols
            ), []
        return without_untracked_classes(request, conn)


def backfill_command(
    start_text: str,
    end_text: str,
    assets: Sequence[str] | None,
    raw_symbols: Sequence[str],
    *,
    verbose: bool = False,
    dry_run: bool = False,
) -> int:
    """Validate, run through Dagster, print the summary; return the exit code."""
    from marketdata_pipeline.backfill_estimate import estimate_lines
    from marketdata_pipeline.backfill_execution import run_backfill
    from marketdata_pipeline.backfill_request import ALL_ASSETS, check_plausible, validate_range
    from marketdata_pipeline.backfill_summary import summary_lines
    from marketdata_pipeline.lib.settings import load_settings

    settings = load_settings()
    window = validate_range(
        start_text, end_text, first=settings.start_date, history_start=settings.history_start
    )
    chosen = tuple(assets) if assets else ALL_ASSETS
    check_plausible(list(raw_symbols), chosen)  # before any database or Dagster work
    from marketdata_pipeline.runtime import prepare, simulator_if_no_key

    # A dry run sends nothing, so it needs no simulator, and it estimates at the configured
    # budget (POLYGON_REQUESTS_PER_MINUTE): the cost of the real backfill it plans.
    with nullcontext(settings) if dry_run else simulator_if_no_key(settings) as settings:
        runtime = prepare(settings)
        request, untracked = _backfill_request(runtime.database_url, window, chosen, raw_symbols)
        for line in estimate_lines(runtime.database_url, settings, request):
            click.echo(line)
        for line in [*untracked, *request.skipped_lines()]:
            click.echo(line)
        if dry_run:
            click.echo("dry run: nothing was requested or written")
            return 0
        if not request.runs():
            return 0
        click.echo(
            f"backfill {window} of {', '.join(request.assets)} through Dagster, one run per "
            f"asset class (instance {runtime.dagster_home})"
        )
        from marketdata_pipeline.backfill_summary import interruption_line
        from marketdata_pipeline.terminal_progress import terminal_progress

        # In a terminal the fetch's progress is one drawn bar; elsewhere, the log's lines.
        # Runs a killed earlier command left STARTED are marked failed first, a line each.
        with terminal_progress():
            outcomes = run_backfill(
                runtime.settings, request, announce=lambda line: click.echo(line, err=True)
            )
    if outcomes and outcomes[-1].interrupted:
        # The one thing to say: the summary would list the symbols' previous outcomes.
        click.echo(f"marketdata: {interruption_line(outcomes, request.runs())}", err=True)
        return EXIT_INTERRUPTED
    if outcomes and outcomes[-1].dead_end:
        # A wrong URL or key: one line, not the same refusal for every symbol.
        failed = ", ".join(o.run_id[:8] for o in outcomes if not o.success)
        _print_err(f"{outcomes[-1].dead_end} (failed: run {failed})")
        return ConfigError.exit_code
    click.echo("")
    for outcome in outcomes:
        status = "SUCCESS" if outcome.success else "FAILED"
        click.echo(f"run {outcome.run_id} ({outcome.job}, {outcome.window}): {status}")
    for line in summary_lines(runtime.database_url, request, verbose=verbose, outcomes=outcomes):
        click.echo(line)
    for line in (line for outcome in outcomes for line in outcome.failures):
        click.echo(f"  {line}")
    from marketdata_pipeline.lib.postgres.store import MixedSourcesError

    if any(MixedSourcesError.__name__ in outcome.error_classes for outcome in outcomes):
        # The store refused the rows (a store never mixes simulated and real ones): the exit
        # of a configuration to fix, not of a run to retry.
        return MixedSourcesError.exit_code
    return 0 if all(outcome.success for outcome in outcomes) else EXIT_RUN_FAILED


# `--symbols AAPL MSFT` (the documented form) leaves MSFT as an extra argument: the command
# takes the extras too, and commas (`--symbols AAPL,MSFT`).
@cli.command("backfill", context_settings={"allow_extra_args": True})
@click.pass_context
@click.option("--start", required=True, help="First day, YYYY-MM-DD (inclusive).")
@click.option("--end", required=True, help="Last day, YYYY-MM-DD (inclusive).")
@click.option("--asset", type=click.Choice(CANDLE_ASSET_NAMES), help="Only this asset.")
@click.option(
    "--symbols", multiple=True, help="Only these symbols (default: the active tracked ones)."
)
@click.option("--verbose", is_flag=True, help="A summary line per symbol, however many.")
@click.option(
    "--dry-run", is_flag=True, help="Print the plan and its estimate; request and write nothing."
)
def backfill(
    ctx: click.Context,
    start: str,
    end: str,
    asset: str | None,
    symbols: tuple[str, ...],
    verbose: bool,
    dry_run: bool,
) -> None:
    """Materialise a date range through Dagster, one run per asset class, and summarise.

    Without POLYGON_API_KEY the local simulator serves the data (simulated, and stored with
    source 'simulator').

    \b
    Examples:
      marketdata backfill --start 2024-01-02 --end 2024-06-28
      marketdata backfill --start 2005-01-03 --end 2024-12-31 --dry-run
      marketdata backfill --start 2024-01-02 --end 2024-01-31 \\
          --asset stock_daily_candles --symbols AAPL MSFT
    """
    if ctx.args and not symbols:
        raise click.UsageError(f"unexpected arguments: {' '.join(ctx.args)}")
    names = tuple(s for v in (*symbols, *ctx.args) for s in v.split(",") if s.strip())
    raise SystemExit(
        backfill_command(
            start, end, [asset] if asset else None, names, verbose=verbose, dry_run=dry_run
        )
    )


# -- simulator, db, demo, dev --------------------------------------------------------------


@cli.command("simulator")
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--key", default=None, help="API key the simulator accepts.")
def simulator(port: int, host: str, key: str | None) -> None:
    """Run the local Polygon-compatible simulator in the foreground (SIMULATED data).

    \b
    Example:
      marketdata simulator --port 8765
    """
    from polygon_simulator.server import SIMULATOR_API_KEY, serve

    serve(host=host, port=port, api_key=key or SIMULATOR_API_KEY)


@cli.group()
def db() -> None:
    """Database helpers."""


@db.command("url")
@click.option("--dagster", is_flag=True, help="The Dagster instance storage URL.")
@click.option("--reveal", is_flag=True, help="Print the password too.")
def db_url(dagster: bool, reveal: bool) -> None:
    """Print the database URL in use (starting the embedded server if needed).

    \b
    Example:
      psql "$(marketdata db url)" -c 'select count(*) from marketdata.stock_daily_candles'
    """
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    url = runtime.dagster_storage_url if dagster else runtime.database_url
    click.echo(url if reveal else redact_url(url))


@db.command("stop")
def db_stop() -> None:
    """Stop the embedded Postgres (the next command that needs it starts it again).

    \b
    Example:
      marketdata db stop        (make clean runs it first)
    """
    from marketdata_pipeline.lib.postgres.embedded import stop_embedded
    from marketdata_pipeline.lib.settings import load_settings

    settings = load_settings()
    if settings.database_url:
        click.echo(
            f"MARKETDATA_DATABASE_URL is set ({redact_url(settings.database_url)}): that server "
            "is not the embedded one, nothing to stop"
        )
        return
    data_dir = settings.home / "pgdata"
    if stop_embedded(data_dir):
        click.echo(f"stopped the embedded Postgres of {data_dir}")
    else:
        click.echo(f"the embedded Postgres of {data_dir} is not running")


@cli.command("demo")
@click.option("--days", type=click.IntRange(1, 3650), default=DEMO_DAYS, show_default=True)
def demo(days: int) -> None:
    """Set up, track the demo universe, materialise recent days, print what landed."""
    from marketdata_pipeline.lib.calendar import last_complete_day
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
    from marketdata_pipeline.lib.symbols import parse_symbols
    from marketdata_pipeline.runtime import prepare

    runtime = prepare()
    universe = parse_symbols(list(DEMO_STOCKS)) + parse_symbols(list(DEMO_CRYPTO), "crypto")
    with connect(runtime.database_url) as conn:
        add_symbols(conn, universe)
    click.echo(f"tracking {', '.join(s.symbol for s in universe)}")
    end = last_complete_day()
    start = max(end - dt.timedelta(days=days - 1), runtime.settings.start_date)
    code = backfill_command(start.isoformat(), end.isoformat(), None, ())
    click.echo(
        f"\nThe candles are in Postgres: {redact_url(runtime.database_url)}\n"
        "  tables marketdata.stock_daily_candles, marketdata.crypto_daily_candles\n"
        '  try: psql "$(.venv/bin/marketdata db url)" -c '
        "'select * from marketdata.stock_daily_candles order by day desc limit 5'\n"
        "Next: `make dev` opens the Dagster UI at http://127.0.0.1:3000"
    )
    raise SystemExit(code)


@cli.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=3000, show_default=True, help="The UI's port.")
def dev(host: str, port: int) -> None:
    """Run the Dagster UI (webserver) and daemon on the embedded defaults.

    \b
    Examples:
      marketdata dev
      marketdata dev --port 3001      (make dev PORT=3001)
    """
    from marketdata_pipeline.devserver import ensure_port_free, run_dev
    from marketdata_pipeline.lib.settings import load_settings
    from marketdata_pipeline.runtime import child_environment, prepare, simulator_if_no_key

    ensure_port_free(host, port)  # before anything starts: a taken port fails at once
    with simulator_if_no_key(load_settings()) as settings:
        runtime = prepare(settings)
        from marketdata_pipeline.cli_runs import settle_dead_cli_runs

        for line in settle_dead_cli_runs():  # the UI then shows killed CLI runs as failed
            click.echo(line, err=True)
        raise SystemExit(run_dev(host, port, child_environment(runtime.settings)))


@cli.command("coverage")
@click.option("--symbols", multiple=True, help="Only these symbols (default: every tracked one).")
@click.option("--start", default=None, help="First day, YYYY-MM-DD (default: first stored).")
@click.option("--end", default=None, help="Last day, YYYY-MM-DD (default: last complete day).")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write a PNG here.")
def coverage(symbols: tuple[str, ...], start: str | None, end: str | None, out: str | None) -> None:
    """Symbols x sessions: stored, missing, quarantined, failed; a summary and a picture.

    \b
    Examples:
      marketdata coverage
      marketdata coverage --symbols AAPL BTCUSD --start 2024-01-02 --out coverage.png
    """
    from pathlib import Path

    from marketdata_pipeline.coverage import coverage_report
    from marketdata_pipeline.coverage_render import format_summary
    from marketdata_pipeline.lib.settings import parse_date
    from marketdata_pipeline.runtime import prepare

    first = parse_date(start, "--start") if start else None
    last = parse_date(end, "--end") if end else None
    names = [s for v in symbols for s in v.split(",") if s.strip()]
    runtime = prepare(with_dagster_home=False)
    report = coverage_report(
        runtime.database_url,
        symbols=names or None,
        start=first,
        end=last,
        out=Path(out) if out else None,
    )
    for line in format_summary(report):  # its last line names the picture, if any
        click.echo(line)


# `marketdata export`: its own module (it imports polars and the Arrow driver only when run).
from marketdata_pipeline.export_command import export  # noqa: E402

cli.add_command(export)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `marketdata` console script; returns the exit code."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="marketdata",
            standalone_mode=False,
        )
    except SystemExit as exc:
        return int(exc.code or 0)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:
        if exc.ctx is not None:
            click.echo(exc.ctx.get_usage(), err=True)
        _print_err(exc.format_message())
        return InputError.exit_code
    except click.ClickException as exc:
        _print_err(exc.format_message())
        return exc.exit_code
    except click.Abort:
        click.echo("marketdata: interrupted", err=True)
        return EXIT_INTERRUPTED
    except MarketdataError as exc:
        _print_err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("marketdata: interrupted", err=True)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
