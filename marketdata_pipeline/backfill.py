"""`marketdata backfill`: validate a date range, run it through Dagster, summarise what landed.

The runs go through a real Dagster instance (`DAGSTER_HOME`, runs and events on Postgres), so
they show up in the UI next to UI-launched backfills. Each asset class is one single-run range
over its partitions (the assets use `BackfillPolicy.single_run()`) in its own job, since stock
partitions are NYSE sessions and crypto ones UTC days: the stock run (with its corporate-action
companions) covers the sessions inside the range, the crypto run every day. They execute in this
process one after the other, with Dagster's INFO log lines as progress.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from marketdata_pipeline.lib import asset_names
from marketdata_pipeline.lib.calendar import NEW_YORK, last_complete_day
from marketdata_pipeline.lib.candles.schema import (
    ASSET_CLASS_BY_NAME,
    CANDLE_ASSET_BY_CLASS,
    CANDLE_ASSET_NAMES,
    candle_run_config,
)
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.run_triggers import CLI_TRIGGER, TRIGGER_TAG
from marketdata_pipeline.lib.settings import Settings, parse_date
from marketdata_pipeline.lib.symbols import (
    AssetClass,
    Symbol,
    canonical_case,
    parse_symbol,
)


@dataclass(frozen=True)
class BackfillRequest:
    """A validated backfill: the window, the assets, and optional explicit symbols."""

    window: CandleWindow
    assets: tuple[str, ...]
    symbols: dict[str, list[str]] | None  # asset -> canonical symbols, None = tracked symbols

    def runs(self) -> list[BackfillRun]:
        """One run per selected asset class that has a trading day in the window (a range
        without an NYSE session has no stock partition, so no stock run)."""
        runs = []
        for asset in self.assets:
            cls = ASSET_CLASS_BY_NAME[asset]
            window = self.window.trading_window(cls)
            if window is not None:
                symbols = None if self.symbols is None else {asset: self.symbols.get(asset, [])}
                runs.append(BackfillRun(cls, asset, window, symbols))
        return runs

    def skipped_lines(self) -> list[str]:
        """A line per selected asset that gets no run, saying why."""
        running = {run.asset for run in self.runs()}
        return [
            f"{asset}: no {ASSET_CLASS_BY_NAME[asset]} trading day (NYSE session) in "
            f"{self.window}, so no partition and no run"
            for asset in self.assets
            if asset not in running
        ]


def without_untracked_classes(
    request: BackfillRequest, conn: Any
) -> tuple[BackfillRequest, list[str]]:
    """`request` without the asset classes that have nothing to fetch: no active tracked
    symbol (and, for stocks, no tracking rule), with a line saying so for each.

    Only for a request of the tracked symbols (explicit symbols say what to fetch). A run of a
    class with no symbol fetches nothing and writes nothing, yet costs Dagster's run, events
    and checks: half of a one-day backfill of a store that tracks one market.
    """
    from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
    from marketdata_pipeline.lib.postgres.universe import list_rules

    if request.symbols is not None:
        return request, []
    kept, lines = [], []
    for asset in request.assets:
        cls = ASSET_CLASS_BY_NAME[asset]
        has_rule = cls is AssetClass.STOCK and bool(list_rules(conn))
        if active_symbols(conn, cls)[0] or has_rule:
            kept.append(asset)
        else:
            lines.append(f"{asset}: no active tracked {cls} symbol, so no run")
    return BackfillRequest(request.window, tuple(kept), None), lines


@dataclass(frozen=True)
class BackfillRun:
    """One run of a backfill: an asset class's candle job over its partitions in the window."""

    asset_class: AssetClass
    asset: str
    window: CandleWindow  # first and last partition key of the class inside the request
    symbols: dict[str, list[str]] | None

    @property
    def job(self) -> str:
        """The candle job of the asset class."""
        from marketdata_pipeline.defs.candles.jobs import CANDLE_JOB_BY_CLASS

        return CANDLE_JOB_BY_CLASS[self.asset_class]

    def run_config(self) -> dict:
        """Dagster run config: INFO-level console progress, and explicit symbols if any."""
        return candle_run_config(self.symbols, log_level="INFO")


@dataclass(frozen=True)
class BackfillOutcome:
    """How one run ended."""

    run_id: str
    job: str
    window: CandleWindow
    success: bool
    failures: list[str]  # step failure messages
    # Stopped by Ctrl-C (SIGINT); `written` names the assets it had materialised by then.
    interrupted: bool = False
    written: tuple[str, ...] = ()
    # The API's dead end the run met (key refused, nothing listening), in one line.
    dead_end: str | None = None
    # Class names of the errors behind the failures (Dagster's wrappers unwrapped).
    error_classes: tuple[str, ...] = ()
    requests: dict[str, int] = field(default_factory=dict)  # sent, by kind (`requests_made`)


def validate_range(
    start_text: str,
    end_text: str,
    *,
    first: dt.date,
    today: dt.date | None = None,
    history_start: dt.date | None = None,
) -> CandleWindow:
    """Parse and check an inclusive date range against the partitions that exist.

    `history_start` (POLYGON_HISTORY_START) is the first day the API plan serves: a range that
    starts earlier is refused, since the API would answer 403 for those days.
    """
    start = parse_date(start_text, "--start")
    end = parse_date(end_text, "--end")
    last = last_complete_day() if today is None else today - dt.timedelta(days=1)
    if end < start:
        raise InputError(f"--end {end} is before --start {start}")
    if start < first:
        raise InputError(
            f"--start {start} is before MARKETDATA_START_DATE {first} (the first partition)"
        )
    if history_start is not None and start < history_start:
        raise InputError(
            f"--start {start} is before POLYGON_HISTORY_START {history_start}, the first day "
            "your Polygon plan serves (older days are refused with 403 NOT_AUTHORIZED): use "
            f"--start {max(history_start, first)} or later, or unset POLYGON_HISTORY_START if "
            "your plan covers older history"
        )
    if end > last:
        raise InputError(
            f"--end {end} is after the last complete day {last} (today's bars are not final)"
        )
    return CandleWindow(start, end)


def check_plausible(raw: list[str] | tuple[str, ...], assets: tuple[str, ...]) -> None:
    """Refuse any `--symbols` entry that cannot be a symbol of the selected assets.

    Runs before any database work, and names the asset class it checked against; which class
    a valid symbol belongs to is settled later by `resolve_request_symbols`.
    """
    classes = [ASSET_CLASS_BY_NAME[a] for a in assets]
    for text in raw:
        problems = []
        for cls in classes:
            try:
                parse_symbol(text, cls)
                break
            except InputError as exc:
                problems.append(str(exc))
        else:
            if len(problems) == 1:
                raise InputError(f"--symbols: {problems[0]}")
            shown = text if len(text) <= 40 else text[:40] + "..."
            raise InputError(
                f"--symbols: {shown!r} is not a plausible ticker (stock, e.g. AAPL, BRK.A) and "
                "not a plausible pair (crypto, e.g. BTCUSD, X:ETHGBP)"
            )


def resolve_request_symbols(
    raw: list[str] | None, assets: tuple[str, ...], tracked: dict[str, AssetClass]
) -> dict[str, list[str]] | None:
    """Split `--symbols` by asset. `X:` means crypto; otherwise the tracked table decides,
    defaulting to stock."""
    if not raw:
        return None
    by_asset: dict[str, list[str]] = {a: [] for a in assets}
    for text in raw:
        upper = text.strip().upper()
        # Tracked stock symbols keep the vendor's case (`KIMpL`), crypto ones are upper case.
        stock_form = canonical_case(text.strip(), AssetClass.STOCK)
        cls = (
            AssetClass.CRYPTO
            if upper.startswith("X:")
            else tracked.get(stock_form) or tracked.get(upper)
        )
        sym: Symbol = parse_symbol(text, cls)
        asset = CANDLE_ASSET_BY_CLASS[sym.asset_class]
        if asset not in by_asset:
            raise InputError(
                f"symbol {text!r} is {sym.asset_class}, but --asset only selects "
                f"{', '.join(assets)}"
            )
        if sym.symbol not in by_asset[asset]:
            by_asset[asset].append(sym.symbol)
    return {a: s for a, s in by_asset.items() if s}


def run_backfill(
    settings: Settings,
    request: BackfillRequest,
    announce: Callable[[str], None] = print,
) -> list[BackfillOutcome]:
    """Run the request as one Dagster run per asset class (`BackfillRequest.runs`) on the
    `DAGSTER_HOME` instance, in this process; a failed run does not stop the next, but one
    interrupted (Ctrl-C) or at a dead end of the API (`dead_end`) is the last.

    First, on the same instance (opening one costs a few hundred ms), the runs a killed
    earlier command left STARTED are marked failed, each `announce`d in a line."""
    import dagster as dg

    from marketdata_pipeline.cli_runs import process_tags, settle_dead_cli_runs, terminal_logger
    from marketdata_pipeline.defs.build import build_defs
    from marketdata_pipeline.lib.polygon.resource import DEAD_END_TAG

    # The terminal shows the runs' progress; failures are reported once, by the summary.
    defs = dg.Definitions.merge(
        build_defs(settings), dg.Definitions(loggers={"console": terminal_logger})
    )
    outcomes = []
    with dg.DagsterInstance.get() as instance:
        for line in settle_dead_cli_runs(instance):
            announce(line)
        for run in request.runs():
            try:
                result = defs.resolve_job_def(run.job).execute_in_process(
                    run_config=run.run_config(),
                    instance=instance,
                    tags={**run.window.run_tags(), TRIGGER_TAG: CLI_TRIGGER, **process_tags()},
                    raise_on_error=False,
                )
            except KeyboardInterrupt:
                # Ctrl-C outside Dagster's own handling (while the run is being set up): the run
                # never started a step, so nothing of it was written.
                outcomes.append(BackfillOutcome("", run.job, run.window, False, [], True))
                break
            outcome = _outcome(result, run)
            stored = instance.get_run_by_id(result.run_id)
            if stored is not None and stored.tags.get(DEAD_END_TAG):
                outcome = dataclasses.replace(outcome, dead_end=stored.tags[DEAD_END_TAG])
            outcomes.append(outcome)
            # After Ctrl-C nothing more runs; after a dead end, the next run would meet it too.
            if outcome.interrupted or outcome.dead_end:
                break
    return outcomes


def _outcome(result, run: BackfillRun) -> BackfillOutcome:
    """How one `execute_in_process` result ended."""
    from marketdata_pipeline.cli_runs import INTERRUPTION_ERRORS

    failures, classes = [], []
    interrupted = False
    for event in result.all_events:
        error = None
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            if error is not None and error.cls_name not in INTERRUPTION_ERRORS:
                cause = _unwrapped(error)
                failures.append(f"step {event.step_key} failed: {cause.message.strip()}")
                classes.append(cause.cls_name or "")
        elif event.is_run_failure:
            error = getattr(event.event_specific_data, "error", None)
        interrupted = interrupted or (error is not None and error.cls_name in INTERRUPTION_ERRORS)
    materialisations = result.get_asset_materialization_events()
    written = tuple(sorted({e.asset_key.to_user_string() for e in materialisations}))
    return BackfillOutcome(
        result.run_id,
        run.job,
        run.window,
        result.success,
        failures,
        interrupted,
        written,
        error_classes=tuple(classes),
        requests=requests_made(materialisations),
    )


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


def _unwrapped(error: Any) -> Any:
    """The error behind Dagster's wrappers ("Error occurred while handling output ..."): the
    one whose message tells the user what happened (a `MixedSourcesError`, ...)."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error


#: How the summary names the requests of each asset of a run; another asset's requests are
#: named after the asset, and shown only when it sent any.
REQUEST_KINDS = {
    asset_names.STOCK_CANDLES: "candles",
    asset_names.CRYPTO_CANDLES: "candles",
    asset_names.STOCK_SPLITS: "splits",
    asset_names.STOCK_DIVIDENDS: "dividends",
    asset_names.STOCK_SPLIT_ADJUSTMENTS: "split repair",
    asset_names.TICKER_REFERENCE: "tickers",
}
#: Kinds the summary always names, even at 0 (a stock run's own steps).
ALWAYS_SHOWN_KINDS = ("candles", "splits", "dividends", "split repair")


def requests_made(materializations: Iterable[Any]) -> dict[str, int]:
    """The requests a run sent, by kind, from its materialisations' metadata: `requests_made`
    (the candles) or `requests` (the other assets), counted once per asset since Dagster
    copies a single-run range's metadata onto every partition."""
    by_asset: dict[str, int] = {}
    for event in materializations:
        materialization = event.materialization
        name = materialization.asset_key.path[-1]
        for key in ("requests_made", "requests"):
            value = getattr(materialization.metadata.get(key), "value", None)
            if name not in by_asset and isinstance(value, int) and not isinstance(value, bool):
                by_asset[name] = value
    made: dict[str, int] = {}
    for name, count in by_asset.items():
        kind = REQUEST_KINDS.get(name, name)
        if count or kind in ALWAYS_SHOWN_KINDS:
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
                requested = [s.symbol for s in _universe(conn, cls, request)]
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


def _universe(conn, cls: AssetClass, request: BackfillRequest) -> list[Symbol]:
    """The symbols a run of `cls` fetches: the tracked ones, and for stocks their companies'
    other tickers and the tracking rules' tickers in the window."""
    from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols
    from marketdata_pipeline.lib.postgres.universe import universe_symbols

    chosen = active_symbols(conn, cls)[0]
    if cls is not AssetClass.STOCK:
        return chosen
    return universe_symbols(conn, chosen, request.window.first, request.window.last)


def _rules_pending(conn) -> bool:
    """True when a tracking rule is active and the ticker reference was not loaded today."""
    from marketdata_pipeline.lib.identity_load import REFRESH_KIND
    from marketdata_pipeline.lib.postgres.universe import list_rules, refreshed_on

    rule_list = list_rules(conn)
    if not rule_list:
        return False
    today = dt.datetime.now(NEW_YORK).date()
    return any(refreshed_on(conn, REFRESH_KIND, r.market) != today for r in rule_list)


def estimate_lines(database_url: str, settings: Settings, request: BackfillRequest) -> list[str]:
    """The plan of each asset and its cost at the configured budget, the reference data a
    stock run reads today with it (`corporate_action_plan`) and the total; sends no request."""
    from marketdata_pipeline.lib.corporate_action_plan import corporate_action_plan
    from marketdata_pipeline.lib.polygon.planner import plan_requests
    from marketdata_pipeline.lib.polygon.progress import duration_text, estimate
    from marketdata_pipeline.lib.postgres.connection import connect
    from marketdata_pipeline.lib.postgres.tracked_symbols import active_symbols

    lines = []
    running = {run.asset for run in request.runs()}
    with connect(database_url) as conn:
        for table in request.assets:
            cls = ASSET_CLASS_BY_NAME[table]
            if request.symbols is not None:
                symbols = [parse_symbol(s, cls) for s in request.symbols.get(table, [])]
            else:
                symbols = _universe(conn, cls, request)
            # Rules whose ticker reference is not loaded yet expand during the run (its first
            # step loads it): the whole market is planned as grouped, one request a session.
            pending = cls is AssetClass.STOCK and request.symbols is None and _rules_pending(conn)
            plan = plan_requests(
                cls,
                symbols,
                request.window.first,
                request.window.last,
                force="grouped" if pending and symbols else None,
                history_start=settings.history_start,
            )
            lines.append(f"{table}: {plan.describe()}")
            if pending:
                from marketdata_pipeline.lib.calendar import trading_days

                sessions = [
                    d
                    for d in trading_days(cls, request.window.first, request.window.last)
                    if settings.history_start is None or d >= settings.history_start
                ]
                from marketdata_pipeline.lib.identity_changes import planned_load

                lines.append(
                    "  tracking rules: the run first loads the ticker reference, "
                    f"{planned_load(conn)} (at most once a day), then fetches every ticker the "
                    f"rules expand to with grouped requests: {len(sessions)}, one per session"
                )
            lines.append(f"  estimate: {estimate(plan, settings.requests_per_minute).text}")
            if cls is AssetClass.STOCK and table in running:
                # The stock run's corporate-action companions read with the same rule.
                tracked = [s.symbol for s in active_symbols(conn, cls)[0]]
                reference = corporate_action_plan(conn, tracked, start_date=settings.start_date)
                extra = sum(reference.requests().values())
                total = plan.cost + extra
                rpm = settings.requests_per_minute
                lines.append(f"  {reference.describe()}")
                lines.append(
                    f"  total: {total:,} request{'' if total == 1 else 's'} "
                    f"({plan.cost:,} candles + {extra:,} reference) "
                    f"at {rpm:,}/min = {duration_text(total * 60.0 / rpm)}"
                )
    return lines


ALL_ASSETS = CANDLE_ASSET_NAMES
