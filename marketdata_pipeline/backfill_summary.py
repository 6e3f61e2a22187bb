"""What `marketdata backfill` prints after its runs: what landed, the requests sent, and the
one line of a backfill stopped by Ctrl-C."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from marketdata_pipeline.backfill_request import BackfillRequest, BackfillRun, run_universe
from marketdata_pipeline.lib import asset_names
from marketdata_pipeline.lib.candles.schema import ASSET_CLASS_BY_NAME

if TYPE_CHECKING:
    from marketdata_pipeline.backfill_execution import BackfillOutcome


#: How the summary names the requests of each asset of a run; another asset's requests are
#: named after the asset, and shown only when it sent any.
REQUEST_KINDS = {
    asset_names.STOCK_CANDLES: "candles",
    asset_names.CRYPTO_CANDLES: "candles",
    asset_names.STOCK_SPLITS: "splits",
    asset_names.STOCK_DIVIDENDS: "dividends",
    asset_names.STOCK_SPLIT_ADJUSTMENTS: "split repair",
    asset_names.TICKER_REFERENCE: "tickers",
    # The identity of hand-typed tickers (`reference_requests` of the stock assets).
    "ticker details": "ticker details",
    "ticker events": "ticker events",
}
#: Kinds the summary always names, even at 0 (a stock run's own steps).
ALWAYS_SHOWN_KINDS = ("candles", "splits", "dividends", "split repair")


def requests_made(materializations: Iterable[Any]) -> dict[str, int]:
    """The requests a run sent, by kind, from its materialisations' metadata: `requests_made`
    (the candles) or `requests` (the other assets), counted once per asset since Dagster
    copies a single-run range's metadata onto every partition."""
    by_asset: dict[str, int] = {}
    reference: dict[str, dict] = {}
    for event in materializations:
        materialization = event.materialization
        name = materialization.asset_key.path[-1]
        for key in ("requests_made", "requests"):
            value = getattr(materialization.metadata.get(key), "value", None)
            if name not in by_asset and isinstance(value, int) and not isinstance(value, bool):
                by_asset[name] = value
        # The reference requests an asset made besides its own (the identity it chose its
        # tickers through: `tickers`, `ticker details`, `ticker events`).
        extra = getattr(materialization.metadata.get("reference_requests"), "value", None)
        if isinstance(extra, dict) and name not in reference:
            reference[name] = extra
    made: dict[str, int] = {}
    for name, count in by_asset.items():
        kind = REQUEST_KINDS.get(name, name)
        if count or kind in ALWAYS_SHOWN_KINDS:
            made[kind] = made.get(kind, 0) + count
    for extra in reference.values():
        for kind, count in extra.items():
            if isinstance(count, int) and count:
                made[kind] = made.get(kind, 0) + count
    return made


def requests_line(outcomes: Sequence[BackfillOutcome]) -> str:
    """E.g. "requests made: 2 (candles 2, splits 0, dividends 0, split repair 0)"."""
    made: dict[str, int] = {}
    for outcome in outcomes:
        for kind, count in outcome.requests.items():
            made[kind] = made.get(kind, 0) + count
    order = list(dict.fromkeys(REQUEST_KINDS.values()))
    kinds = sorted(made, key=lambda k: (order.index(k) if k in order else len(order), k))
    detail = ", ".join(f"{kind} {made[kind]:,}" for kind in kinds)
    line = f"requests made: {sum(made.values()):,}" + (f" ({detail})" if detail else "")
    if not all(outcome.success for outcome in outcomes):
        # A step that raised stored no materialisation, so its requests are not in the sum.
        line += "; a failed step's requests are not counted"
    return line


#: Above this many symbols per asset the summary gives counts, not a line per symbol.
SUMMARY_TABLE_LIMIT = 20


def summary_lines(
    database_url: str,
    request: BackfillRequest,
    *,
    verbose: bool = False,
    outcomes: Sequence[BackfillOutcome] = (),
) -> list[str]:
    """What landed, accounting for every requested symbol: per asset the rows and symbols
    stored, then the failed symbols and those with no rows, by name; a line per symbol only
    when there are few (or `verbose`); then the requests the `outcomes` sent, by kind."""
    # Imported here: the store pulls in psycopg, which refusing a bad range does not need.
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.store import window_summary
    from marketdata_pipeline.lib.postgres.tracked_symbols import failed_symbols

    lines = []
    with connect(database_url) as conn:
        failed = {(s, c): e for s, c, e in failed_symbols(conn)}
        for table in request.assets:
            cls = ASSET_CLASS_BY_NAME[table]
            if request.symbols is not None:
                requested = sorted(request.symbols.get(table, []))
            else:
                requested = [s.symbol for s in run_universe(conn, cls, request)]
            stored = {r.symbol: r for r in window_summary(conn, table, request.window)}
            got = [stored[s] for s in requested if s in stored]
            lines.append(
                f"marketdata.{table}: {sum(r.rows for r in got)} rows in {request.window} "
                f"for {len(got)} of {len(requested)} requested symbols"
            )
            if verbose or len(requested) <= SUMMARY_TABLE_LIMIT:
                lines.extend(
                    f"  {r.symbol:<10} {r.rows:>6} rows  {r.first} .. {r.last}" for r in got
                )
            errors = [(s, failed[(s, cls.value)]) for s in requested if (s, cls.value) in failed]
            # One line per reason: a grouped day that failed fails every symbol the same way.
            by_reason: dict[str, list[str]] = {}
            for symbol, error in errors:
                by_reason.setdefault(error, []).append(symbol)
            for error, names in by_reason.items():
                who = names[0] if len(names) == 1 else f"{len(names)} symbols ({_some(names)})"
                lines.append(f"  FAILED {who} ({cls}): {error}")
            failed_names = {s for s, _ in errors}
            empty = [s for s in requested if s not in stored and s not in failed_names]
            if empty:
                lines.append(f"  no rows in the window (none traded?): {_some(empty, 50)}")
    if outcomes:
        lines.append(requests_line(outcomes))
    return lines


def _some(names: list[str], limit: int = 5) -> str:
    """`names` for a line: the first `limit`, then how many more."""
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def interruption_line(outcomes: list[BackfillOutcome], planned: list[BackfillRun]) -> str:
    """One line for a backfill stopped by Ctrl-C: what was stopped, what of it was written, what
    finished before it and what never started."""
    stopped = outcomes[-1]
    what = f"{stopped.job} {stopped.window}"
    run = f" (run {stopped.run_id[:8]} marked failed)" if stopped.run_id else ""
    if stopped.written:
        line = (
            f"interrupted: {what} stopped after writing {', '.join(stopped.written)}; nothing "
            f"else of it was written{run}"
        )
    else:
        line = f"interrupted: nothing was written for {what}{run}"
    done = [o.job for o in outcomes[:-1]]
    if done:
        line += f"; {', '.join(done)} had finished"
    left = [r.job for r in planned[len(outcomes) :]]
    if left:
        line += f"; {', '.join(left)} not started"
    return line + ". Rerun the same command to fill the range."
