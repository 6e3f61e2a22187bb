"""Reference data read once a day, through the real `marketdata backfill` on the simulator.

A stock backfill's run includes the corporate-action assets; the splits and the whole market's
recent dividends are read at most once a (New York) day per store, a newly tracked stock's
dividend history whenever one appears. The simulator's counters say what was really sent; the
summary and the dry run must say the same.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import pytest

from marketdata_pipeline_tests.helpers import query, reference_reads_age
from marketdata_pipeline_tests.test_cli import dagster_env  # noqa: F401 (the fixture)


@pytest.fixture
def marketdata(cli, request):
    """`marketdata ARGS...` in process on the test database, with a real Dagster instance
    (runs and events on Postgres) and the simulator's key."""
    request.getfixturevalue("dagster_env")  # after `cli`: it replaces cli's storage URL
    return cli


DAY = ("--start", "2024-03-04", "--end", "2024-03-04", "--asset", "stock_daily_candles")


def by_kind(sim) -> dict[str, int]:
    """Requests the simulator served since its last reset, by kind (kinds never sent left out)."""
    return {k: n for k, n in sim.stats(include_log=False)["by_kind"].items() if n}


def line(out: str, prefix: str) -> str:
    (found,) = [x.strip() for x in out.splitlines() if x.strip().startswith(prefix)]
    return found


def test_a_second_stock_run_the_same_day_makes_only_candle_requests(marketdata, database_url, sim):
    marketdata("symbols", "add", "AAPL")
    sim.reset()
    code, out, err = marketdata("backfill", *DAY)
    assert code == 0, err
    # The candle plan (1), the splits since the first partition (1 page), the whole market's
    # recent dividends (1 page), AAPL's dividend history (1 query), and once for AAPL, typed
    # by hand, its security (its ticker details and its ticker events).
    assert by_kind(sim) == {
        "range": 1,
        "splits": 1,
        "dividends": 2,
        "ticker_details": 1,
        "ticker_events": 1,
    }
    assert line(out, "requests made:") == (
        "requests made: 6 (candles 1, splits 1, dividends 2, split repair 0, ticker details 1,"
        " ticker events 1)"
    )
    (read,) = query(
        database_url, "SELECT count(*) FROM marketdata.reference_refresh WHERE scope = 'market'"
    )
    assert read == (2,)  # splits and dividends, each read for the whole market today

    # Again the same day: only the candle plan is paid.
    sim.reset()
    code, out, err = marketdata("backfill", *DAY)
    assert code == 0, err
    assert by_kind(sim) == {"range": 1}
    assert line(out, "requests made:") == (
        "requests made: 1 (candles 1, splits 0, dividends 0, split repair 0)"
    )

    # The next day a split of AAPL is learned by the day's read and repairs the stored bar.
    sim.configure(
        splits=[{"ticker": "AAPL", "execution_date": "2024-03-06", "split_from": 1, "split_to": 2}]
    )
    reference_reads_age(database_url)
    sim.reset()
    later = ("--start", "2024-03-05", "--end", "2024-03-05", "--asset", "stock_daily_candles")
    code, out, err = marketdata("backfill", *later)
    assert code == 0, err
    # Candles: 1 range; splits and recent dividends: a page each; repair: 1 range for AAPL.
    assert by_kind(sim) == {"range": 2, "splits": 1, "dividends": 1}
    assert line(out, "requests made:") == (
        "requests made: 4 (candles 1, splits 1, dividends 1, split repair 1)"
    )
    (applied,) = query(database_url, "SELECT applied_at IS NOT NULL FROM marketdata.stock_splits")
    assert applied == (True,)


def test_a_newly_tracked_stock_gets_its_dividend_history_the_same_day(
    marketdata, database_url, sim
):
    marketdata("symbols", "add", "AAPL")
    assert marketdata("backfill", *DAY)[0] == 0
    marketdata("symbols", "add", "MSFT")
    sim.reset()
    code, out, err = marketdata("backfill", *DAY)
    assert code == 0, err
    # The splits and the market's recent dividends are today's; MSFT's history and its
    # security are new. (The candles of two stocks on one day: one grouped request.)
    assert by_kind(sim) == {"grouped": 1, "dividends": 1, "ticker_details": 1, "ticker_events": 1}
    (dividends,) = [e for e in sim.stats()["log"] if e["kind"] == "dividends"]
    assert parse_qs(dividends["query"])["ticker.any_of"] == ["MSFT"]
    assert line(out, "requests made:") == (
        "requests made: 4 (candles 1, splits 0, dividends 1, split repair 0, ticker details 1,"
        " ticker events 1)"
    )
    (history,) = query(
        database_url, "SELECT count(*) FROM marketdata.stock_dividend_history WHERE symbol = 'MSFT'"
    )
    assert history == (1,)


def test_the_dry_run_counts_the_reference_requests_it_would_make(marketdata, database_url, sim):
    marketdata("symbols", "add", "AAPL")
    code, out, err = marketdata("backfill", *DAY, "--dry-run")
    assert code == 0, err
    assert sim.stats()["requests"] == 0
    reference = line(out, "reference data:")
    assert reference.startswith("reference data: 3 requests (splits 1: whole market since")
    assert "never read" in reference and "1 tracked stock's history" in reference
    identity = line(out, "identity:")
    assert identity.startswith("identity: 1 tracked ticker without a security (AAPL)")
    assert "2 requests" in identity
    assert line(out, "total:").startswith("total: 6 requests (1 candles + 5 reference)")
    # What the dry run said is what the run sends.
    code, out, err = marketdata("backfill", *DAY)
    assert code == 0, err
    assert sim.stats()["requests"] == 6
    assert line(out, "requests made:").startswith("requests made: 6 ")
    # The same day the reference data is read: the estimate is the candle plan alone.
    code, out, err = marketdata("backfill", *DAY, "--dry-run")
    reference = line(out, "reference data:")
    assert reference.startswith("reference data: 0 requests (splits 0:")
    assert "read today at" in reference and "every tracked stock's history loaded" in reference
    assert "identity:" not in out  # AAPL's security is stored
    assert line(out, "total:").startswith("total: 1 request (1 candles + 0 reference)")
