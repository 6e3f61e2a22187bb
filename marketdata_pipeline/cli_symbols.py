"""`marketdata symbols`: the tracked symbols, the tracking rules, and the security identity.

- `symbols add SYMBOL...` / `symbols remove SYMBOL...`: track symbols (validated all-or-nothing
  before anything is written), or stop tracking them (their stored candles stay);
- `symbols add --market stocks [--type CS --type ETF ...] [--include-delisted]`: store a
  tracking rule (every ticker the vendor lists of those types, delisted ones for their listed
  life when asked), kept current by the daily reference load; `symbols remove --rule ID`
  deactivates one;
- `symbols list` shows the symbols, the rules and the securities each expands to;
- `symbols resolve TICKER --on YYYY-MM-DD`: the security a ticker meant that day.

Added to the `marketdata` group by `cli.py`. The heavy imports stay inside the functions, so that
`marketdata symbols list` starts fast (no Dagster).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import click

from marketdata_pipeline.lib.errors import InputError

ASSET_CLASSES = click.Choice(["stock", "crypto"])


@click.group()
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
        return add_rule(market, types, include_delisted)
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
        remove_rules(rule_ids)
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
        rules = [] if as_json else rule_lines(conn)
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


def rule_lines(conn) -> list[str]:
    """The active rules, one line each, with the securities they expand to."""
    from marketdata_pipeline.lib.postgres.universe import list_rules, rule_count

    return [
        f"rule {rule.rule_id}: {rule.describe()} -> {rule_count(conn, rule)} securities"
        for rule in list_rules(conn)
    ]


@symbols.command("resolve")
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
