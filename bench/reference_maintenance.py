"""Daily ticker-reference maintenance: the requests of a day's load after the first one.

A fresh store loads the ticker reference of a simulated market of 10,000 listed stocks and
2,000 delisted ones (the first, full load: ceil(listed / 1000) + ceil(delisted / 1000) pages).
Then the world changes day by day: each day one new listing, one delisting and one rename,
and a last day with no change. Each day the real `ticker_reference` asset loads it again (in
this process; the simulator runs in another and counts what it was sent).

Figures: the first load's requests; a forced full reload of the last day's world (the
same-run baseline: what a daily load reading everything costs); the most and the mean of the
daily loads' requests (target <= 10 a day) against it; the no-change day; and whether every
change landed in the store (the stored listed tickers after the week are the world's).

The store also tracks hand-typed tickers: ten the list has (their security comes from it, no
request of their own) and two it lacks (as grouped daily carries thousands): each of those is
asked about once (its ticker details: the vendor knows nobody, 1 request), on the first day.

A second store tracks only hand-typed tickers and no rule, so no ticker list is loaded: each
gets its own security from its ticker details and events on the first day (2 requests, 3 for
one renamed away, 1 for one the vendor does not know), and no later day asks again.

`python -m bench.reference_maintenance` (10,000 listed, 7 days of changes; about a minute);
`--smoke` for 2,500 listed and 2 days.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import psycopg

from bench.common import (
    BenchPostgres,
    Figure,
    SimulatorProcess,
    emit,
    module_main,
    postgres,
)
from polygon_simulator import market
from polygon_simulator.listings import universe_listing

FULL = {"listed": 10_000, "delisted": 2_000, "days": 7}
SMOKE = {"listed": 2_500, "delisted": 200, "days": 2}
DAY_ONE = dt.date(2025, 6, 2)
PAGE = 1000
TARGET = 10
#: Tickers the vendor's list lacks (grouped daily has thousands of them).
UNLISTED = ["GRPXA", "GRPXB"]
#: Hand-typed tickers of the store without a rule.
HAND_TYPED = 20


def _delisted(count: int) -> list[dict[str, Any]]:
    """Companies delisted before the store's first load, one every other day from 2012 on (no
    FIGI: the vendor lacks it for most inactive tickers)."""
    first = dt.date(2012, 1, 3)
    return [
        {
            "name": f"Gone {i}",
            "tickers": [
                {
                    "ticker": f"ZD{i:04d}",
                    "first_day": "2010-01-04",
                    "last_day": (first + dt.timedelta(days=2 * (i % 2000))).isoformat(),
                }
            ],
        }
        for i in range(count)
    ]


def _sessions(days: int) -> list[dt.date]:
    out, day = [], DAY_ONE
    while len(out) < days + 1:  # the days of changes, then a day without one
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            out.append(day)
    return out


def _changes(plain: list[str], index: int, day: dt.date) -> list[dict[str, Any]]:
    """Day `index`'s changes: a new listing, a delisting and a rename, from `day` on."""
    letter = chr(ord("A") + index)
    before = (day - dt.timedelta(days=1)).isoformat()
    gone = universe_listing(plain[2 * index]).model_dump(mode="json")
    gone["tickers"][0]["last_day"] = before
    renamed = universe_listing(plain[2 * index + 1]).model_dump(mode="json")
    renamed["tickers"] = [
        {**renamed["tickers"][0], "last_day": before},
        {"ticker": f"RNM{letter}", "first_day": day.isoformat()},
    ]
    new = {
        "name": f"New Listing {letter}",
        "composite_figi": f"BBG0NWL{index:05d}",
        "tickers": [{"ticker": f"NWL{letter}", "first_day": day.isoformat()}],
    }
    return [new, gone, renamed]


def _load(resources: dict[str, Any], *, force: bool = False) -> None:
    import dagster as dg

    from marketdata_pipeline.definitions import defs

    result = dg.materialize(
        [defs.get_assets_def("ticker_reference")],
        resources=resources,
        run_config={
            "ops": {"ticker_reference": {"config": {"force": force}}},
            "loggers": {"console": {"config": {"log_level": "WARNING"}}},
        },
        raise_on_error=False,
    )
    if not result.success:
        raise RuntimeError("ticker_reference failed")


def _open_tickers(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ticker FROM marketdata.ticker_history WHERE last_day IS NULL"
        ).fetchall()
        # The asset checks "once a day" on the clock: make the last load yesterday's.
        conn.execute("UPDATE marketdata.reference_refresh SET refreshed_on = refreshed_on - 1")
    return {r[0] for r in rows}


def measure(pg: BenchPostgres, sim: Any, listed: int, delisted: int, days: int) -> list[Figure]:
    """The first load and `days` days of maintenance on a fresh store."""
    from marketdata_pipeline.lib.identity_changes import RECONCILE_PAGES
    from marketdata_pipeline.lib.polygon.resource import PolygonResource
    from marketdata_pipeline.lib.postgres.database import PostgresDatabase

    figures: list[Figure] = []
    plain = sorted(t for t in market.stock_universe(listed) if "." not in t)
    sessions = _sessions(days)
    world = _delisted(delisted)
    sim.configure(listings=world, stock_universe_size=listed, today=DAY_ONE.isoformat())
    with pg.temporary_database("bench_refmaint") as url:
        resources = {
            "polygon": PolygonResource(
                api_key=sim.api_key, base_url=sim.base_url, requests_per_minute=60_000
            ),
            "database": PostgresDatabase(url=url),
        }
        _track(url, plain[-10:] + UNLISTED)
        sim.reset()
        _load(resources)
        first = int(sim.stats()["requests"])
        unlisted_asked = _details_requests(sim)
        before = _open_tickers(url)
        daily: list[int] = []
        for index, day in enumerate(sessions):
            if index < days:
                world = world + _changes(plain, index, day)
            sim.configure(listings=world, today=day.isoformat())
            sim.reset()
            _load(resources)
            daily.append(int(sim.stats()["requests"]))
            unlisted_asked += _details_requests(sim)
            after = _open_tickers(url)
        # The same-run baseline: the last day's world read in full again (what a daily load
        # reading everything costs).
        sim.reset()
        _load(resources, force=True)
        reload = int(sim.stats()["requests"])
        expected = set(before)
        for index in range(days):
            letter = chr(ord("A") + index)
            expected -= {plain[2 * index], plain[2 * index + 1]}
            expected |= {f"NWL{letter}", f"RNM{letter}"}
    full_read = -(-listed // PAGE)
    emit(
        Figure(
            "reference_maintenance.first_load",
            first,
            "requests",
            anchor=f"ceil({listed:,} listed / {PAGE}) + ceil({delisted:,} delisted / {PAGE}) "
            f"= {full_read + -(-delisted // PAGE)} pages + {len(UNLISTED)} tracked tickers the "
            "list lacks (their details, once)",
        ),
        figures,
    )
    emit(
        Figure(
            "reference_maintenance.unlisted_identity",
            unlisted_asked,
            "requests",
            anchor=f"{len(UNLISTED)} tracked tickers the list lacks, {len(sessions) + 1} loads",
            target=f"= {len(UNLISTED)} (once each)",
            met=unlisted_asked == len(UNLISTED),
        ),
        figures,
    )
    changing = daily[:days]
    mean = statistics.mean(changing)
    emit(
        Figure(
            "reference_maintenance.full_reload",
            reload,
            "requests",
            anchor=f"the last day's world read in full again ({full_read} listed pages)",
        ),
        figures,
    )
    emit(
        Figure(
            "reference_maintenance.daily_max",
            max(changing),
            "requests",
            anchor=f"a full reload: {reload}",
            target=f"<= {TARGET}",
            met=max(daily) <= TARGET,
            note=f"each day 1 listing + 1 delisting + 1 rename; days {changing}",
        ),
        figures,
    )
    emit(
        Figure(
            "reference_maintenance.daily_mean",
            mean,
            "requests",
            ratio=reload / mean,
            phrase="{ratio:.2f}x fewer than a full reload, same run",
        ),
        figures,
    )
    emit(
        Figure(
            "reference_maintenance.no_change_day",
            daily[-1],
            "requests",
            anchor=f"listed and delisted newest first + {RECONCILE_PAGES} reconciliation page",
            note=f"the reconciliation re-reads the listed market every "
            f"{-(-full_read // RECONCILE_PAGES)} days",
        ),
        figures,
    )
    emit(
        Figure(
            "reference_maintenance.changes_landed",
            len(expected ^ after),
            "tickers wrong",
            anchor=f"{len(after):,} listed tickers stored after {days} days",
            target="= 0",
            met=expected == after,
        ),
        figures,
    )
    figures.extend(_hand_typed(pg, sim, plain, sessions))
    return figures


def _track(url: str, tickers: list[str]) -> None:
    from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
    from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol

    with psycopg.connect(url) as conn:
        add_symbols(conn, [parse_symbol(t, AssetClass.STOCK) for t in tickers])


def _details_requests(sim: Any) -> int:
    """Ticker-details requests (only the tracked tickers' identity asks those; the list load's
    events are its renamed securities')."""
    return int(sim.stats()["by_kind"].get("ticker_details", 0))


def _hand_typed(pg: BenchPostgres, sim: Any, plain: list[str], sessions: list[dt.date]):
    """A store of hand-typed tickers and no rule: the identity's requests day by day (the
    world of the last day: `plain[1]` renamed away to RNMA)."""
    from marketdata_pipeline.lib.identity_tracked import identify_tracked
    from marketdata_pipeline.lib.polygon.resource import PolygonResource

    tickers = [plain[1], *plain[-(HAND_TYPED - 2) :], "NOPEQ"]
    client = PolygonResource(
        api_key=sim.api_key, base_url=sim.base_url, requests_per_minute=60_000
    ).get_client()
    by_day: list[int] = []
    with pg.temporary_database("bench_handtyped") as url:
        _track(url, tickers)
        for day in sessions:
            sim.configure(today=day.isoformat())
            sim.reset()
            with psycopg.connect(url) as conn:
                identify_tracked(client, conn, floor=dt.date(2024, 1, 2), today=day)
            by_day.append(int(sim.stats()["requests"]))
        (secured,) = _count_secured(url, tickers)
    expected = 2 * (len(tickers) - 1) + 1 + 1  # + the renamed one's current ticker, + NOPEQ
    figures: list[Figure] = []
    emit(
        Figure(
            "reference_maintenance.hand_typed_first_day",
            by_day[0],
            "requests",
            anchor=f"{len(tickers)} hand-typed tickers, no rule: 2 each, +1 renamed away, "
            f"1 for an unknown one = {expected}; the ticker list would be "
            f"{-(-len(plain) // PAGE)}+ pages",
            target=f"= {expected}",
            met=by_day[0] == expected,
            note=f"{secured} of {len(tickers) - 1} known tickers got a security",
        ),
        figures,
    )
    emit(
        Figure(
            "reference_maintenance.hand_typed_later_days",
            max(by_day[1:], default=0),
            "requests",
            anchor=f"the most of days 2..{len(by_day)}",
            target="= 0",
            met=not any(by_day[1:]),
        ),
        figures,
    )
    return figures


def _count_secured(url: str, tickers: list[str]) -> tuple[int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(DISTINCT ticker) FROM marketdata.ticker_history WHERE ticker = ANY(%s)",
            (tickers,),
        ).fetchone()


def run(
    *,
    pg: BenchPostgres | None = None,
    sim: Any | None = None,
    listed: int = FULL["listed"],
    delisted: int = FULL["delisted"],
    days: int = FULL["days"],
) -> list[Figure]:
    """Measure and print the figures; return them."""
    if sim is None:
        with SimulatorProcess() as own:
            return run(pg=pg, sim=own, listed=listed, delisted=delisted, days=days)
    with postgres(pg) as server:
        return measure(server, sim, listed, delisted, days)


def main(argv: list[str] | None = None) -> list[Figure]:
    """`python -m bench.reference_maintenance [--smoke]`."""
    return module_main(__doc__, run, smoke=SMOKE, full=FULL, argv=argv)


if __name__ == "__main__":
    main()
