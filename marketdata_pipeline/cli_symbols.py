"""`marketdata symbols` for the universe by rule and the security identity.

- `symbols add --market stocks [--type CS --type ETF ...] [--include-delisted]`: store a
  tracking rule (every ticker the vendor lists of those types, delisted ones for their listed
  life when asked), kept current by the daily reference load;
- `symbols list` shows the rules and the securities each expands to (`rule_lines`);
- `symbols remove --rule ID` deactivates a rule;
- `symbols resolve TICKER --on YYYY-MM-DD`: the security a ticker meant that day.

Imported by `cli.py`; the heavy imports stay inside the functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import click

from marketdata_pipeline.lib.errors import InputError


def add_rule(market: str, types: Sequence[str], include_delisted: bool) -> None:
    """Store a tracking rule and say what it expands to now."""
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.universe import add_rule as store_rule
    from marketdata_pipeline.lib.postgres.universe import rule_count
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        rule, outcome = store_rule(conn, market, types, include_delisted)
        count = rule_count(conn, rule)
    notes = {
        "added": "added",
        "reactivated": "re-activated",
        "already tracked": "already tracked, nothing to do",
    }
    known = (
        f"{count} securities in the stored reference"
        if count
        else "the ticker reference is loaded by the next stock run (or materialise "
        "ticker_reference)"
    )
    click.echo(f"rule {rule.rule_id} ({rule.describe()}): {notes[outcome]}; {known}")


def remove_rules(rule_ids: Sequence[int]) -> None:
    """Deactivate tracking rules (their stored candles stay)."""
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.universe import remove_rule
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        for rule_id in rule_ids:
            done = remove_rule(conn, rule_id)
            click.echo(
                f"rule {rule_id}: "
                + ("removed (no longer fetched; stored candles kept)" if done else "no such rule")
            )


def rule_lines(conn) -> list[str]:
    """The active rules, one line each, with the securities they expand to."""
    from marketdata_pipeline.lib.postgres.universe import list_rules, rule_count

    return [
        f"rule {rule.rule_id}: {rule.describe()} -> {rule_count(conn, rule)} securities"
        for rule in list_rules(conn)
    ]


@click.command("resolve")
@click.argument("ticker")
@click.option("--on", "on", required=True, metavar="YYYY-MM-DD", help="The day asked about.")
def resolve(ticker: str, on: str) -> None:
    """Print the security TICKER meant on a day: name, FIGI and the ticker's interval.

    \b
    Examples:
      marketdata symbols resolve META --on 2015-01-02
      marketdata symbols resolve FB --on 2020-06-01
    """
    from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol

    try:
        day = dt.date.fromisoformat(on)
    except ValueError:
        raise InputError(f"--on {on!r}: expected a date as YYYY-MM-DD") from None
    # The canonical stock form (`meta` is META, `KIMpL` stays), or a clear refusal.
    ticker = parse_symbol(ticker, AssetClass.STOCK).symbol
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.securities import resolve as resolve_ticker
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    with connect(runtime.database_url) as conn:
        found = resolve_ticker(conn, ticker, day)
    sec, interval = found.security, found.interval
    click.echo(f"{ticker} on {day}: {sec.name or '(no name)'}")
    click.echo(f"  security_id  {sec.security_id}")
    click.echo(f"  FIGI         {sec.composite_figi or '(none: derived id)'}")
    click.echo(f"  type         {sec.type or '-'}   cik {sec.cik or '-'}")
    click.echo(f"  {ticker} held  {interval.first_day} .. {interval.last_day or 'now'}")
    if sec.delisted_date:
        click.echo(f"  delisted     after {sec.delisted_date}")
