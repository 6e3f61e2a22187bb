"""`marketdata backfill`'s plan and its cost before anything is sent (printed first, and all
that `--dry-run` prints): the requests of each asset at the configured budget."""

from __future__ import annotations

import datetime as dt

from marketdata_pipeline.backfill_request import BackfillRequest, run_universe
from marketdata_pipeline.lib.calendar import NEW_YORK
from marketdata_pipeline.lib.candles.schema import ASSET_CLASS_BY_NAME
from marketdata_pipeline.lib.settings import Settings
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol


def _rules_pending(conn) -> bool:
    """True when a tracking rule is active and the ticker reference was not loaded today."""
    from marketdata_pipeline.lib.identity_load import REFRESH_KIND
    from marketdata_pipeline.lib.postgres.universe import list_rules, refreshed_on

    rule_list = list_rules(conn)
    if not rule_list:
        return False
    today = dt.datetime.now(NEW_YORK).date()
    return any(refreshed_on(conn, REFRESH_KIND, r.market) != today for r in rule_list)


def identity_line(conn, only: list[str] | None) -> tuple[str, int] | None:
    """The one-time cost of the tracked tickers (of `only`) the store holds no security for
    (`identity_tracked`): a line and its requests, or None when there are none."""
    from marketdata_pipeline.lib.identity_tracked import REQUESTS_PER_TICKER, pending_tickers

    pending = pending_tickers(conn, only)
    if not pending:
        return None
    cost = REQUESTS_PER_TICKER * len(pending)
    named = ", ".join(pending[:5]) + (", ..." if len(pending) > 5 else "")
    return (
        f"identity: {len(pending):,} tracked ticker{'' if len(pending) == 1 else 's'} without "
        f"a security ({named}): ticker details and events once each, {cost:,} requests (one "
        "more for a ticker renamed away), never again",
        cost,
    )


def estimate_lines(database_url: str, settings: Settings, request: BackfillRequest) -> list[str]:
    """The plan of each asset and its cost at the configured budget, the reference data a
    stock run reads today with it (`corporate_action_plan`) and the total; sends no request."""
    from marketdata_pipeline.lib.corporate_action_plan import corporate_action_plan
    from marketdata_pipeline.lib.identity_changes import planned_load
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
                symbols = run_universe(conn, cls, request)
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
                sessions = plan.days  # the sessions the API plan serves
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
                lines.append(f"  {reference.describe()}")
                only = None if request.symbols is None else request.symbols.get(table, [])
                identity = identity_line(conn, only)
                if identity is not None:
                    lines.append(f"  {identity[0]}")
                    extra += identity[1]
                total = plan.cost + extra
                rpm = settings.requests_per_minute
                lines.append(
                    f"  total: {total:,} request{'' if total == 1 else 's'} "
                    f"({plan.cost:,} candles + {extra:,} reference) "
                    f"at {rpm:,}/min = {duration_text(total * 60.0 / rpm)}"
                )
    return lines
