"""The `marketdata` command line: a thin layer of click commands over the project's functions.

Each command parses its arguments, reads the settings once (`runtime.prepare`), and calls a
function in `backfill_*.py`, `devserver.py`, the store (`lib/postgres/`) or the simulator. Exit
codes scripts can rely on: 0 success, 1 the run failed, 2 invalid input (symbols, dates),
3 configuration (database, API key, URLs), 130 interrupted (Ctrl-C). User mistakes print one
line on stderr, no traceback.

This module holds the click group, the small commands (`simulator`, `db`, `demo`, `dev`,
`coverage`) and `main`; the larger ones have their own modules: `cli_symbols.py` (the
`symbols` group), `cli_backfill.py` and `export_command.py`. None imports Dagster at module
level, so `marketdata symbols list` starts fast.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence

import click

from marketdata_pipeline import cli_backfill, cli_symbols
from marketdata_pipeline.cli_exits import EXIT_INTERRUPTED, print_err
from marketdata_pipeline.lib.errors import InputError, MarketdataError
from marketdata_pipeline.lib.settings import redact_url

DEMO_STOCKS = ("AAPL", "MSFT", "NVDA", "SPY")
DEMO_CRYPTO = ("BTCUSD", "ETHUSD")
DEMO_DAYS = 30


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Daily OHLCV candles from Polygon (Massive) into Postgres, through Dagster.

    \b
    Quick start:
      marketdata symbols add AAPL X:BTCUSD
      marketdata backfill --start 2024-01-02 --end 2024-01-31
      marketdata dev
    """


cli.add_command(cli_symbols.symbols)
cli.add_command(cli_backfill.backfill)


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
    code = cli_backfill.backfill_command(start.isoformat(), end.isoformat(), None, ())
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
        print_err(exc.format_message())
        return InputError.exit_code
    except click.ClickException as exc:
        print_err(exc.format_message())
        return exc.exit_code
    except click.Abort:
        click.echo("marketdata: interrupted", err=True)
        return EXIT_INTERRUPTED
    except MarketdataError as exc:
        print_err(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("marketdata: interrupted", err=True)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
