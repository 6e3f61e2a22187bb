"""`marketdata backfill`: a date range through Dagster, one run per asset class, summarised.

The click command parses the arguments; `backfill_command` (also run by `marketdata demo`)
validates them before any database or Dagster work, builds the request, prints the plan and its
estimate, runs it (`backfill_execution.py`) and prints what landed (`backfill_summary.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import click

from marketdata_pipeline.cli_exits import EXIT_INTERRUPTED, EXIT_RUN_FAILED, print_err
from marketdata_pipeline.lib.asset_names import CANDLE_ASSET_NAMES
from marketdata_pipeline.lib.errors import ConfigError


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
        print_err(f"{outcomes[-1].dead_end} (failed: run {failed})")
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
@click.command("backfill", context_settings={"allow_extra_args": True})
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
