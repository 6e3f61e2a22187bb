"""The security identity end to end on the simulator: the real assets, the real CLI.

The simulated world (polygon_simulator.identity_world) is moved inside the test store's span
(it starts 2024-01-01): Meta Platforms trades as FB up to 2024-06-07 and as META from
2024-06-10 (the events endpoint says 2024-06-12), an ETF held META up to 2024-03-28 and
trades as METV after, SVB (SIVB) is delisted after 2024-09-13.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

import dagster as dg
import httpx
import psycopg
import pytest

from marketdata_pipeline.definitions import defs
from marketdata_pipeline.lib.postgres.securities import AmbiguousOwnership
from marketdata_pipeline_tests.helpers import query
from polygon_simulator import identity_world
from polygon_simulator.listings import universe_listing

D = dt.date
META_CO, ETF, SVB = "BBG000MM2P62", "BBG00ZQFXB42", "BBG000BT0CM2"
WORLD = dict(rename_on=D(2024, 6, 10), reused_until=D(2024, 3, 28), delisted_after=D(2024, 9, 13))
ticker_reference = defs.get_assets_def("ticker_reference")


@pytest.fixture
def world(sim):
    sim.configure(
        listings=[item.model_dump(mode="json") for item in identity_world(**WORLD)],
        stock_universe_size=20,
        today=D(2025, 6, 2),
    )
    return sim


def load_reference(resources: dict, *, force: bool = False) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [ticker_reference],
        resources={k: resources[k] for k in ("polygon", "database")},
        run_config={"ops": {"ticker_reference": {"config": {"force": force}}}},
        raise_on_error=False,
    )


def history(database_url: str, security_id: str) -> list[tuple]:
    return query(
        database_url,
        "SELECT ticker, first_day, last_day FROM marketdata.ticker_history"
        " WHERE security_id = %s ORDER BY first_day",
        (security_id,),
    )


def vendor_closes(sim, ticker: str, start: str, end: str) -> dict[dt.date, float]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    path = f"{sim.base_url}/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"
    body = httpx.get(path, headers=headers).json()
    return {
        dt.datetime.fromtimestamp(b["t"] / 1000, dt.UTC).astimezone().date(): b["c"]
        for b in body.get("results", [])
    }


def test_the_reference_load_builds_securities_and_runs_once_a_day(world, resources, database_url):
    assert load_reference(resources).success
    requests = world.stats(include_log=False)["requests"]
    # Listed and delisted ticker lists (one page each) + the events of the renamed company
    # and of the reused ticker's two owners.
    assert requests == 2 + 2
    assert history(database_url, META_CO) == [
        ("FB", D(2012, 5, 18), D(2024, 6, 11)),
        ("META", D(2024, 6, 12), None),  # the vendor's event date, until bars say otherwise
    ]
    assert history(database_url, ETF) == [
        ("META", D(2010, 1, 4), D(2024, 3, 28)),
        ("METV", D(2024, 3, 29), None),
    ]
    assert history(database_url, SVB) == [("SIVB", D(2024, 1, 1), D(2024, 9, 13))]
    no_figi = query(
        database_url,
        "SELECT security_id, active FROM marketdata.securities"
        " WHERE name = 'Zeta Quixote Holdings'",
    )
    assert len(no_figi) == 1 and no_figi[0][0].startswith("md:") and no_figi[0][1] is False
    # A second load the same day makes no request.
    world.reset()
    assert load_reference(resources).success
    assert world.stats(include_log=False)["requests"] == 0


def test_a_conflicting_ownership_write_is_refused_naming_both(world, resources, database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO marketdata.securities (security_id, name, source)"
            " VALUES ('md:00000000000000aa', 'Hand-typed owner', 'manual')"
        )
        conn.execute(
            "INSERT INTO marketdata.ticker_history VALUES"
            " ('md:00000000000000aa', 'METV', '2024-05-01', NULL, 'manual')"
        )
    result = load_reference(resources)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "md:00000000000000aa" in message and ETF in message and "METV" in message
    # Nothing of the refused load was written.
    assert history(database_url, META_CO) == []


def test_a_rename_gives_one_exact_series_and_a_reused_ticker_two(
    world, cli, dagster_env, database_url
):
    code, out, err = cli("symbols", "add", "--market", "stocks", "--type", "CS", "--type", "ETF")
    assert code == 0, err
    code, out, err = cli("backfill", "--start", "2024-03-18", "--end", "2024-06-21")
    assert code == 0, out + err
    # The stored bars moved the switch to the day META really started.
    assert history(database_url, META_CO)[-1] == ("META", D(2024, 6, 10), None)
    series = query(
        database_url,
        "SELECT day, ticker, close FROM marketdata.security_daily_candles"
        " WHERE security_id = %s ORDER BY day",
        (META_CO,),
    )
    vendor = {
        **{(d, "FB"): c for d, c in vendor_closes(world, "FB", "2024-03-18", "2024-06-21").items()},
        **{
            (d, "META"): c
            for d, c in vendor_closes(world, "META", "2024-06-10", "2024-06-21").items()
        },
    }
    assert {(d, t): c for d, t, c in series} == vendor  # one series, exact, FB then META
    assert len({d for d, _, _ in series}) == len(series)  # one bar a day
    # The ETF's META days are its own: none of its ~$12 bars in Meta's series, and back.
    etf = query(
        database_url,
        "SELECT day, ticker, close FROM marketdata.security_daily_candles"
        " WHERE security_id = %s ORDER BY day",
        (ETF,),
    )
    assert etf and all(c < 40 for _, _, c in etf) and all(c > 100 for _, _, c in series)
    etf_meta_days = [d for d, t, _ in etf if t == "META"]
    assert max(etf_meta_days) <= D(2024, 3, 28)
    assert min(d for d, t, _ in series if t == "META") >= D(2024, 6, 10)
    # Point in time, from the command line.
    code, out, _ = cli("symbols", "resolve", "META", "--on", "2024-03-01")
    assert code == 0 and "Roundhill Ball Metaverse ETF" in out and ETF in out
    code, out, _ = cli("symbols", "resolve", "META", "--on", "2024-06-14")
    assert code == 0 and "Meta Platforms" in out and "2024-06-10 .. now" in out
    code, _, err = cli("symbols", "resolve", "META", "--on", "2024-05-01")
    assert code == 2 and "nobody held 'META' on 2024-05-01" in err
    code, out, _ = cli("symbols", "list")
    assert "rule 1: stocks CS,ETF" in out


def test_include_delisted_backfills_a_delisted_company_up_to_its_last_day(
    world, cli, dagster_env, database_url
):
    cli("symbols", "add", "--market", "stocks", "--type", "CS")
    assert cli("backfill", "--start", "2024-09-03", "--end", "2024-09-27")[0] == 0
    assert query(
        database_url, "SELECT count(*) FROM marketdata.stock_daily_candles WHERE symbol = 'SIVB'"
    ) == [(0,)]
    code, out, err = cli(
        "symbols", "add", "--market", "stocks", "--type", "CS", "--include-delisted"
    )
    assert code == 0 and "rule 2" in out, err
    assert cli("backfill", "--start", "2024-09-03", "--end", "2024-09-27")[0] == 0
    days = query(
        database_url,
        "SELECT min(day), max(day), count(*) FROM marketdata.security_daily_candles"
        " WHERE security_id = %s",
        (SVB,),
    )
    assert days == [(D(2024, 9, 3), D(2024, 9, 13), 9)]
    code, out, _ = cli("symbols", "list")
    assert "(with delisted)" in out
    assert cli("symbols", "remove", "--rule", "2")[1].startswith("rule 2: removed")


def test_tracking_a_company_follows_its_rename(world, resources, cli, dagster_env, database_url):
    assert load_reference(resources).success
    cli("symbols", "add", "FB")
    assert cli("backfill", "--start", "2024-06-03", "--end", "2024-06-14")[0] == 0
    tickers = query(
        database_url,
        "SELECT symbol, min(day), max(day) FROM marketdata.stock_daily_candles GROUP BY symbol"
        " ORDER BY symbol",
    )
    assert tickers == [
        ("FB", D(2024, 6, 3), D(2024, 6, 7)),
        ("META", D(2024, 6, 10), D(2024, 6, 14)),
    ]


def test_ambiguous_ownership_is_an_input_error():
    assert issubclass(AmbiguousOwnership, ValueError)


def test_loading_a_market_costs_its_list_pages_and_the_renamed_securities_events(
    sim, resources, database_url
):
    """Listed and delisted tickers at 1,000 a page, plus one events request per security that
    needs one: the renamed company and the ETF (renamed too, and the reused ticker's earlier
    owner)."""
    delisted = [
        {
            "name": f"Gone {i}",
            "tickers": [
                {"ticker": f"ZD{i:04d}", "first_day": "2020-01-02", "last_day": "2021-01-04"}
            ],
        }
        for i in range(1500)
    ]
    world = [item.model_dump(mode="json") for item in identity_world(**WORLD)]
    sim.configure(listings=world + delisted, stock_universe_size=2500, today=D(2025, 6, 2))
    assert load_reference(resources).success
    listed = query(database_url, "SELECT count(*) FROM marketdata.securities WHERE active")[0][0]
    gone = query(database_url, "SELECT count(*) FROM marketdata.securities WHERE NOT active")[0][0]
    assert (listed, gone) == (2500 - 1 + 2, 1500 + 2)  # META governed; +Meta, +ETF; +SVB, +ZZQX
    pages = -(-listed // 1000) + -(-(gone + 2) // 1000)  # FB and the ETF's META rows are delisted
    assert pages == 5
    assert sim.stats(include_log=False)["requests"] == pages + 2


def test_a_daily_load_reads_only_what_changed(world, resources, database_url):
    assert load_reference(resources).success  # the first load: listed and delisted
    meta_before = history(database_url, META_CO)
    # The next day: AAPL is delisted, NEWCO lists.
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE marketdata.reference_refresh SET refreshed_on = refreshed_on - 1")
    aapl = universe_listing("AAPL").model_dump(mode="json")
    aapl["tickers"][0]["last_day"] = "2025-05-30"
    newco = {
        "name": "Newco",
        "composite_figi": "BBG0NEWC0000",
        "tickers": [{"ticker": "NEWCO", "first_day": "2025-05-01"}],
    }
    listings = [item.model_dump(mode="json") for item in identity_world(**WORLD)]
    world.configure(listings=[*listings, aapl, newco])
    world.reset()
    assert load_reference(resources).success
    # The listed and the delisted rows newest first (one page each), one reconciliation
    # page; no events (nobody was renamed).
    log = world.stats()["log"]
    assert [(e["kind"], _sort_of(e["query"])) for e in log] == [
        ("tickers", "last_updated_utc"),
        ("tickers", "delisted_utc"),
        ("tickers", "ticker"),
    ]
    aapl_id = universe_listing("AAPL").composite_figi
    assert history(database_url, aapl_id) == [("AAPL", D(2024, 1, 1), D(2025, 5, 30))]
    assert history(database_url, "BBG0NEWC0000") == [("NEWCO", D(2024, 1, 1), None)]
    assert history(database_url, META_CO) == meta_before  # untouched


def _sort_of(query_string: str) -> str:
    return dict(parse_qsl(query_string)).get("sort", "")
