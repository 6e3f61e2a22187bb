"""A hand-typed ticker follows its company without any tracking rule: its security comes from
its ticker details and ticker events, once a ticker (see lib/identity_tracked.py).

The world of test_identity.py: Meta Platforms trades as FB up to 2024-06-07 and as META from
2024-06-10 (the events say 2024-06-12); an ETF held META up to 2024-03-28.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
import pytest

from marketdata_pipeline import read
from marketdata_pipeline.lib.identity_tracked import (
    IDENTITY_KIND,
    identify_tracked,
    pending_tickers,
)
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.defs.reference.test_identity import (  # noqa: F401 - fixture
    META_CO,
    history,
    vendor_closes,
    world,
)
from marketdata_pipeline_tests.helpers import query

D = dt.date
pytestmark = pytest.mark.usefixtures("world")
IDENTITY_REQUESTS = {"ticker_details", "ticker_events"}


def identity_log(sim) -> list[tuple[str, str]]:
    return [(e["kind"], e["path"]) for e in sim.stats()["log"] if e["kind"] in IDENTITY_REQUESTS]


def test_a_hand_typed_ticker_follows_its_rename_without_a_rule(sim, cli, dagster_env, database_url):
    assert cli("symbols", "add", "FB")[0] == 0
    code, out, _ = cli("backfill", "--start", "2024-03-18", "--end", "2024-06-21", "--dry-run")
    assert code == 0
    assert "identity: 1 tracked ticker without a security (FB)" in out
    sim.reset()
    code, out, err = cli("backfill", "--start", "2024-03-18", "--end", "2024-06-21")
    assert code == 0, out + err
    # FB's details (renamed away: inactive), its company's events by FIGI, then the details
    # of its current ticker; no ticker list.
    assert [kind for kind, _ in identity_log(sim)] == [
        "ticker_details",
        "ticker_events",
        "ticker_details",
    ]
    assert not [e for e in sim.stats()["log"] if e["kind"] == "tickers"]
    assert "ticker details 2" in out and "ticker events 1" in out
    # One security; the stored bars moved the switch to the day META really started.
    assert history(database_url, META_CO) == [
        ("FB", D(2012, 5, 18), D(2024, 6, 9)),
        ("META", D(2024, 6, 10), None),
    ]
    (company,) = query(
        database_url,
        "SELECT name, active, list_date FROM marketdata.securities WHERE security_id = %s",
        (META_CO,),
    )
    assert company == ("Meta Platforms, Inc. Class A Common Stock", True, D(2012, 5, 18))
    # Its bars before and after the rename are one series, read by security.
    series = read.security_candles(META_CO, start="2024-03-18", end="2024-06-21", url=database_url)
    vendor = {
        **{(d, "FB"): c for d, c in vendor_closes(sim, "FB", "2024-03-18", "2024-06-21").items()},
        **{
            (d, "META"): c
            for d, c in vendor_closes(sim, "META", "2024-06-10", "2024-06-21").items()
        },
    }
    assert {(d, t): c for d, t, c in series.select("day", "ticker", "close").iter_rows()} == vendor
    assert series["day"].is_unique().all()
    # The earlier owner of META (the ETF, ~$12, up to 2024-03-28) is fetched under the
    # ticker but not joined to the company.
    etf_bars = query(
        database_url,
        "SELECT count(*) FROM marketdata.stock_daily_candles"
        " WHERE symbol = 'META' AND day <= '2024-03-28' AND close < 40",
    )
    assert etf_bars[0][0] > 0
    assert series.filter(pl.col("close") < 40).is_empty()
    assert series.filter(pl.col("ticker") == "META")["day"].min() == D(2024, 6, 10)
    # A second run the same day, and one the next day, ask nothing about identity.
    sim.reset()
    code, out, err = cli("backfill", "--start", "2024-06-17", "--end", "2024-06-21")
    assert code == 0, out + err
    assert identity_log(sim) == [] and "ticker details" not in out
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE marketdata.reference_refresh SET refreshed_on = refreshed_on - 1")
        assert pending_tickers(conn) == []
    sim.reset()
    code, out, _ = cli("backfill", "--start", "2024-06-17", "--end", "2024-06-21", "--dry-run")
    assert code == 0 and "identity:" not in out
    assert cli("backfill", "--start", "2024-06-17", "--end", "2024-06-21")[0] == 0
    assert identity_log(sim) == []


def test_a_ticker_the_vendor_does_not_know_gets_a_clear_message_once(sim, resources, database_url):
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol(t, AssetClass.STOCK) for t in ("NOPEQ", "AAPL")])
        client = resources["polygon"].get_client()
        result = identify_tracked(client, conn, floor=D(2024, 1, 1), today=D(2025, 6, 2))
        assert result.unknown == ["NOPEQ"] and result.failed == {}
        (line,) = result.problems()
        assert "NOPEQ: the vendor's ticker reference knows no such ticker" in line
        assert [i.split(":")[0] for i in result.identified] == ["AAPL"]
        # AAPL: details and events; NOPEQ: details only (no bar to ask `date=` about).
        assert result.requests == {"ticker details": 2, "ticker events": 1}
        recorded = conn.execute(
            "SELECT scope, records FROM marketdata.reference_refresh WHERE kind = %s"
            " ORDER BY scope",
            (IDENTITY_KIND,),
        ).fetchall()
        assert recorded == [("AAPL", 1), ("NOPEQ", 0)]
        sim.reset()
        again = identify_tracked(client, conn, floor=D(2024, 1, 1), today=D(2025, 6, 2))
        assert again.requests == {} and again.unknown == []
    assert sim.stats(include_log=False)["requests"] == 0


def test_a_backfill_with_an_unknown_hand_typed_ticker_does_not_fail(
    sim, cli, dagster_env, database_url
):
    assert cli("symbols", "add", "NOPEQ", "FB")[0] == 0
    code, out, err = cli("backfill", "--start", "2024-06-03", "--end", "2024-06-14")
    assert code == 0, out + err
    assert query(
        database_url,
        "SELECT scope, records FROM marketdata.reference_refresh WHERE kind = %s ORDER BY scope",
        (IDENTITY_KIND,),
    ) == [("FB", 1), ("NOPEQ", 0)]
    stored = {t for (t,) in query(database_url, "SELECT DISTINCT symbol FROM "
                                  "marketdata.stock_daily_candles")}  # fmt: skip
    assert {"FB", "META"} <= stored


def test_a_ticker_nobody_holds_today_is_asked_again_as_of_a_day_it_traded(sim, database_url):
    """The vendor answers 404 for a ticker renamed away when asked without a date
    (polygon-io/issues #339); the details are asked again `date=` the run's first day."""
    from marketdata_pipeline_tests.resources import make_polygon

    sim.add_fault(kind="status", status_code=404, match_path="/v3/reference/tickers/FB$", times=1)
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("FB", AssetClass.STOCK)])
        client = make_polygon(sim).get_client()
        result = identify_tracked(
            client, conn, floor=D(2024, 1, 1), today=D(2025, 6, 2), first_day=D(2024, 3, 18)
        )
    details = [e for e in sim.stats()["log"] if e["path"] == "/v3/reference/tickers/FB"]
    assert [(e["status"], e["query"]) for e in details] == [(404, ""), (200, "date=2024-03-18")]
    assert result.identified == [f"FB: {META_CO} (FB, META)"]
    assert history(database_url, META_CO)[0][0] == "FB"


def test_a_plan_without_the_reference_endpoint_leaves_the_ticker_pending(sim, database_url):
    """A plan refusal (403) of ticker details does not fail the run's candles: the ticker is
    reported and asked about again on the next run."""
    from marketdata_pipeline_tests.lib.polygon.test_vendor_reality import NOT_AUTHORIZED_MESSAGE
    from marketdata_pipeline_tests.resources import make_polygon

    sim.add_fault(
        kind="status",
        status_code=403,
        match_path="/v3/reference/tickers/AAPL$",
        message=NOT_AUTHORIZED_MESSAGE,
    )
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL", AssetClass.STOCK)])
        client = make_polygon(sim).get_client()
        result = identify_tracked(client, conn, floor=D(2024, 1, 1), today=D(2025, 6, 2))
        assert list(result.failed) == ["AAPL"] and result.identified == []
        assert "asked again next run" in result.problems()[0]
        assert pending_tickers(conn) == ["AAPL"]
