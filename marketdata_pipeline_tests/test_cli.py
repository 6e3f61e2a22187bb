"""The `marketdata` command line (in process) against a real Postgres."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest

from marketdata_pipeline_tests.helpers import query, read_table


def tracked(database_url: str) -> list[tuple]:
    return query(
        database_url,
        "SELECT symbol, asset_class, active, status FROM marketdata.tracked_symbols"
        " ORDER BY asset_class, symbol",
    )


def test_add_normalises_and_infers_the_asset_class(cli, database_url):
    code, out, _ = cli("symbols", "add", "aapl", "X:ETHGBP", "MSFT")
    assert code == 0
    assert "AAPL (stock): added" in out and "ETHGBP (crypto): added" in out
    code, _, _ = cli("symbols", "add", "btcusd", "--asset-class", "crypto")
    assert code == 0
    assert tracked(database_url) == [
        ("BTCUSD", "crypto", True, "pending"),
        ("ETHGBP", "crypto", True, "pending"),
        ("AAPL", "stock", True, "pending"),
        ("MSFT", "stock", True, "pending"),
    ]


def test_adding_an_existing_symbol_is_a_no_op_that_says_so(cli, database_url):
    cli("symbols", "add", "AAPL")
    code, out, _ = cli("symbols", "add", "AAPL")
    assert code == 0 and "already tracked" in out
    assert len(tracked(database_url)) == 1


def test_remove_deactivates_and_add_reactivates(cli, database_url):
    cli("symbols", "add", "AAPL", "X:BTCUSD")
    code, out, _ = cli("symbols", "remove", "AAPL", "BTCUSD")
    assert code == 0
    assert "AAPL (stock): removed" in out and "BTCUSD (crypto): removed" in out
    assert {(s, a) for s, _, a, _ in tracked(database_url)} == {("AAPL", False), ("BTCUSD", False)}
    code, out, _ = cli("symbols", "remove", "AAPL")
    assert "already removed" in out
    code, out, _ = cli("symbols", "add", "AAPL")
    assert "AAPL (stock): re-activated" in out
    assert ("AAPL", "stock", True, "pending") in tracked(database_url)
    # Fetched once, re-activated: its status stays what its last run left, never `pending`
    # (never fetched) beside a last day.
    cli("symbols", "remove", "AAPL")
    query(
        database_url,
        "UPDATE marketdata.tracked_symbols SET status = 'ok', last_success_day = '2024-03-08'"
        " WHERE symbol = 'AAPL' RETURNING symbol",
    )
    cli("symbols", "add", "AAPL")
    assert ("AAPL", "stock", True, "ok") in tracked(database_url)


def test_list_json_is_an_array_of_objects_with_status(cli):
    cli("symbols", "add", "AAPL", "X:BTCUSD")
    cli("symbols", "remove", "AAPL")
    code, out, _ = cli("symbols", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["symbol"], r["asset_class"], r["active"], r["status"]) for r in rows] == [
        ("AAPL", "stock", False, "pending"),
        ("BTCUSD", "crypto", True, "pending"),
    ]
    assert {"last_success_day", "last_error", "last_attempt_at"} <= set(rows[0])
    code, out, _ = cli("symbols", "list")
    assert "AAPL" in out and "BTCUSD" in out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["../etc/passwd"], "not a plausible ticker"),
        (["AA PL"], "not a plausible ticker"),
        (["AAPL'"], "not a plausible ticker"),
        (['"AAPL"'], "not a plausible ticker"),
        (["AAPL;DROP TABLE x"], "not a plausible ticker"),
        (["AAPL;DROP TABLE marketdata.tracked_symbols"], "too long"),
        ([""], "empty"),
        ([" AAPL"], "whitespace"),
        (["A" * 200], "too long"),
        (["ÄPPL"], "non-ASCII"),
        (["X:AAPL", "--asset-class", "stock"], "crypto prefix X: but asset class stock"),
        (["X:"], "not a plausible pair"),
        (["BTC", "--asset-class", "crypto"], "not a plausible pair"),
        (["GOOD", "bad/one"], "'bad/one'"),
    ],
)
def test_implausible_symbols_are_refused_and_nothing_is_written(cli, database_url, args, expected):
    code, _out, err = cli("symbols", "add", *args)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert tracked(database_url) == []


def test_unknown_asset_class_is_refused(cli, database_url):
    code, _, err = cli("symbols", "add", "AAPL", "--asset-class", "bond")
    assert code == 2 and "'bond' is not one of 'stock', 'crypto'" in err
    assert tracked(database_url) == []


@pytest.fixture
def dagster_env(pg_server, sim, monkeypatch, tmp_path):
    """A real Dagster instance (runs and events on Postgres) and the simulator, for the CLI."""
    import uuid

    import psycopg
    from psycopg import sql

    name = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    socket_dir = pg_server.get_uri().split("host=")[1]
    monkeypatch.setenv(
        "MARKETDATA_DAGSTER_STORAGE_URL",
        f"postgresql+psycopg2://postgres:@/{name}?host={socket_dir}",
    )
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("POLYGON_API_KEY", sim.api_key)
    monkeypatch.setenv("POLYGON_BASE_URL", sim.base_url)
    monkeypatch.setenv("POLYGON_REQUESTS_PER_MINUTE", "6000")
    yield tmp_path / "dagster_home"
    with psycopg.connect(pg_server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_backfill_runs_through_the_dagster_instance_and_summarises(
    cli, dagster_env, database_url, sim
):
    import dagster as dg

    cli("symbols", "add", "AAPL", "X:BTCUSD")
    code, out, err = cli("backfill", "--start", "2024-03-01", "--end", "2024-03-31")
    assert code == 0, err
    assert "SUCCESS" in out
    assert "marketdata.stock_daily_candles: 20 rows in 2024-03-01..2024-03-31" in out  # Good Friday
    assert "BTCUSD" in out and "31 rows" in out
    assert "MARKETDATA_DAGSTER_STORAGE_URL" in (dagster_env / "dagster.yaml").read_text()
    # One run per asset class, each over its partitions: the stock run over the NYSE sessions
    # of March (the 29th is Good Friday, the 30th and 31st a weekend), the crypto run every day.
    assert "(stock_candles_job, 2024-03-01..2024-03-28): SUCCESS" in out
    assert "(crypto_candles_job, 2024-03-01..2024-03-31): SUCCESS" in out
    with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME = the CLI's instance
        runs = {run.job_name: run for run in instance.get_runs()}
        assert set(runs) == {"stock_candles_job", "crypto_candles_job"}
        assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs.values())
        ranges = {
            name: (
                run.tags["dagster/asset_partition_range_start"],
                run.tags["dagster/asset_partition_range_end"],
            )
            for name, run in runs.items()
        }
        assert ranges == {
            "stock_candles_job": ("2024-03-01", "2024-03-28"),
            "crypto_candles_job": ("2024-03-01", "2024-03-31"),
        }
    # --asset and --symbols narrow the run; the status table records the outcome.
    code, out, _ = cli(
        "backfill",
        "--start",
        "2024-04-01",
        "--end",
        "2024-04-05",
        "--asset",
        "crypto_daily_candles",
        "--symbols",
        "btcusd",
    )
    assert code == 0
    assert {e["ticker"] for e in sim.stats()["log"][-1:]} == {"X:BTCUSD"}
    assert query(database_url, "SELECT max(day) FROM marketdata.crypto_daily_candles") == [
        (dt.date(2024, 4, 5),)
    ]
    # A weekend has no stock partition: only the crypto run, and a line saying why.
    before = len(sim.stats()["log"])
    code, out, _ = cli("backfill", "--start", "2024-04-06", "--end", "2024-04-07")
    assert code == 0
    assert (
        "stock_daily_candles: no stock trading day (NYSE session) in 2024-04-06..2024-04-07" in out
    )
    assert "(crypto_candles_job, 2024-04-06..2024-04-07): SUCCESS" in out
    assert "stock_candles_job" not in out
    assert {e["ticker"] for e in sim.stats()["log"][before:]} == {"X:BTCUSD"}


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("2024-13-01", "2024-12-31", "--start '2024-13-01' is not a date"),
        ("2024-1-1", "2024-01-31", "is not a date: expected YYYY-MM-DD"),
        ("2024-03-31", "2024-03-01", "--end 2024-03-01 is before --start 2024-03-31"),
        ("2023-12-01", "2024-01-31", "before MARKETDATA_START_DATE 2024-01-01"),
        ("2024-01-02", "2999-01-01", "after the last complete day"),
    ],
)
def test_backfill_refuses_bad_dates_before_anything_runs(cli, sim, start, end, expected):
    code, _out, err = cli("backfill", "--start", start, "--end", end)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert sim.stats()["requests"] == 0


def test_backfill_without_a_key_uses_the_simulator_loudly_and_marks_its_rows(
    cli, dagster_env, database_url, monkeypatch
):
    """No key and no POLYGON_BASE_URL: the local simulator serves the run, at a budget that
    does not stall, and every row says it is simulated."""
    for name in ("POLYGON_API_KEY", "POLYGON_BASE_URL", "POLYGON_REQUESTS_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    cli("symbols", "add", "AAPL")
    code, out, err = cli("backfill", "--start", "2024-03-04", "--end", "2024-03-08")
    assert code == 0, err
    assert "using the local SIMULATOR" in err
    assert "marketdata.stock_daily_candles: 5 rows in 2024-03-04..2024-03-08" in out
    assert query(database_url, "SELECT DISTINCT source FROM marketdata.stock_daily_candles") == [
        ("simulator:range",)
    ]


def test_a_store_of_simulated_rows_refuses_a_keyed_servers_rows_with_exit_3(
    cli, dagster_env, database_url, sim, monkeypatch, tmp_path
):
    """The trial of issue 18: a keyless backfill, then the same store with a key. Through
    POLYGON_BASE_URL the simulator still says what it is (its rows stay `simulator:`); a server
    posing as Polygon is refused, exit 3, the documented message, the table unchanged."""
    from marketdata_pipeline.lib.postgres.store import mixed_sources_message

    monkeypatch.setenv("MARKETDATA_CACHE_DIR", str(tmp_path / "cache"))
    keyed = {name: os.environ[name] for name in ("POLYGON_API_KEY", "POLYGON_BASE_URL")}
    for name in keyed:
        monkeypatch.delenv(name)
    cli("symbols", "add", "AAPL")
    window = ("--start", "2024-03-04", "--end", "2024-03-08", "--asset", "stock_daily_candles")
    code, _out, err = cli("backfill", *window)
    assert code == 0, err
    assert query(database_url, "SELECT value FROM marketdata.store_info") == [("simulator",)]

    for name, value in keyed.items():
        monkeypatch.setenv(name, value)
    later = ("--start", "2024-03-11", "--end", "2024-03-15", "--asset", "stock_daily_candles")
    code, _out, err = cli("backfill", *later)
    assert code == 0, err
    assert query(database_url, "SELECT DISTINCT source FROM marketdata.stock_daily_candles") == [
        ("simulator:range",)
    ]
    table = read_table(database_url, "stock_daily_candles")

    sim.configure(identify=False)  # a keyed server that is (or poses as) Polygon
    code, out, err = cli("backfill", "--start", "2024-03-18", "--end", "2024-03-22",
                         "--asset", "stock_daily_candles")  # fmt: skip
    assert code == 3
    assert mixed_sources_message("simulator", "polygon") in out + err
    assert read_table(database_url, "stock_daily_candles").equals(table)


def test_the_keyless_simulator_has_splits_and_dividends_for_the_guides(
    cli, dagster_env, database_url, monkeypatch
):
    """The simulator a keyless command starts has a few real corporate actions, so the queries
    of docs/corporate-actions.md show something without configuring it: NVDA's 10-for-1 split
    of 2024-06-10 (a tenfold step as traded, none adjusted) and AAPL's 2024 dividends."""
    for name in ("POLYGON_API_KEY", "POLYGON_BASE_URL", "POLYGON_REQUESTS_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    cli("symbols", "add", "NVDA", "AAPL")
    code, _, err = cli(
        "backfill", "--start", "2024-06-05", "--end", "2024-06-12",
        "--asset", "stock_daily_candles",
    )  # fmt: skip
    assert code == 0, err
    assert query(
        database_url,
        "SELECT execution_date, split_from, split_to FROM marketdata.stock_splits"
        " WHERE symbol = 'NVDA'",
    ) == [(dt.date(2024, 6, 10), 1.0, 10.0)]
    ex_dates = query(
        database_url,
        "SELECT ex_dividend_date FROM marketdata.stock_dividends WHERE symbol = 'AAPL'"
        " AND ex_dividend_date BETWEEN '2024-01-01' AND '2024-12-31' ORDER BY 1",
    )
    assert len(ex_dates) == 4
    ratios = query(
        database_url,
        "SELECT u.day, round((u.close / c.close)::numeric, 6) FROM"
        " marketdata.stock_daily_candles_unadjusted u JOIN marketdata.stock_daily_candles c"
        " USING (symbol, day) WHERE symbol = 'NVDA' ORDER BY u.day",
    )
    assert {r for d, r in ratios if d < dt.date(2024, 6, 10)} == {10}
    assert {r for d, r in ratios if d >= dt.date(2024, 6, 10)} == {1}


def test_symbol_rules_name_the_asset_class_and_refuse_ambiguity(cli, database_url):
    """A bad --symbols names the class it was checked against; the same text tracked as
    stock and crypto is never added or removed by guess."""
    code, _, err = cli(
        "backfill", "--start", "2024-01-02", "--end", "2024-01-03",
        "--asset", "stock_daily_candles", "--symbols", "aapl!",
    )  # fmt: skip
    assert code == 2 and "stock symbol 'aapl!' is not a plausible ticker" in err
    assert "pair" not in err
    cli("symbols", "add", "X:BTCUSD")
    code, _, err = cli("symbols", "add", "BTCUSD")
    assert code == 2 and "BTCUSD is already tracked as crypto" in err and "--asset-class" in err
    assert tracked(database_url) == [("BTCUSD", "crypto", True, "pending")]
    # Said explicitly, both can be tracked; a plain remove is then refused as ambiguous.
    assert cli("symbols", "add", "BTCUSD", "--asset-class", "stock")[0] == 0
    code, _, err = cli("symbols", "remove", "BTCUSD")
    assert code == 2 and "tracked as crypto and as stock" in err
    assert all(row[2] for row in tracked(database_url)), "nothing deactivated"
    assert cli("symbols", "remove", "BTCUSD", "--asset-class", "crypto")[0] == 0
    assert tracked(database_url) == [
        ("BTCUSD", "crypto", False, "pending"),
        ("BTCUSD", "stock", True, "pending"),
    ]


def test_the_backfill_summary_accounts_for_every_symbol_and_scales(
    cli, dagster_env, database_url, sim
):
    """Counts first; failed symbols and symbols without rows by name; no per-symbol table for
    a long list unless --verbose."""
    from polygon_simulator.market import stock_universe

    many = [t for t in stock_universe(40) if "." not in t][:25]
    cli("symbols", "add", *many)
    code, out, err = cli("backfill", "--start", "2024-03-04", "--end", "2024-03-08")
    assert code == 0, err
    head = "marketdata.stock_daily_candles: "
    (line,) = [x for x in out.splitlines() if x.startswith(head)]
    assert line == f"{head}125 rows in 2024-03-04..2024-03-08 for 25 of 25 requested symbols"
    listed = [x for x in out.splitlines() if x.strip().split(" ")[0] in many]
    assert listed == [], "no per-symbol table for 25 symbols"
    code, out, _ = cli("backfill", "--start", "2024-03-04", "--end", "2024-03-08", "--verbose")
    listed = [x for x in out.splitlines() if x.strip().split(" ")[0] in many]
    assert len(listed) == 25


def test_dry_run_prints_the_plan_and_estimate_and_spends_nothing(
    cli, dagster_env, database_url, sim
):
    cli("symbols", "add", "AAPL", "MSFT", "X:BTCUSD")
    code, out, err = cli("backfill", "--start", "2024-01-02", "--end", "2024-12-31", "--dry-run")
    assert code == 0, err
    assert "stock_daily_candles: stock plan: range (2 requests)" in out
    assert "crypto_daily_candles: crypto plan: range (1 request) for 1 symbol x" in out
    assert "estimate: 2 range requests at 6,000/min" in out
    assert "dry run: nothing was requested or written" in out
    assert sim.stats()["requests"] == 0
    assert query(database_url, "SELECT count(*) FROM marketdata.stock_daily_candles") == [(0,)]


def test_a_keyless_dry_run_estimates_at_the_configured_budget(
    cli, dagster_env, database_url, monkeypatch
):
    """Without a key the dry run plans the real backfill: at POLYGON_REQUESTS_PER_MINUTE (the
    free tier's 5 by default), not at the simulator's pace, and without starting it."""
    for name in ("POLYGON_API_KEY", "POLYGON_BASE_URL", "POLYGON_REQUESTS_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    cli("symbols", "add", "AAPL", "MSFT")
    code, out, err = cli(
        "backfill", "--start", "2024-01-02", "--end", "2024-12-31", "--dry-run",
        "--asset", "stock_daily_candles",
    )  # fmt: skip
    assert code == 0, err
    assert "estimate: 2 range requests at 5/min" in out
    assert "SIMULATOR" not in err


def test_coverage_command_prints_the_summary_and_draws_the_picture(
    cli, dagster_env, database_url, tmp_path
):
    cli("symbols", "add", "AAPL")
    assert cli("backfill", "--start", "2024-03-04", "--end", "2024-03-08")[0] == 0
    picture = tmp_path / "coverage.png"
    code, out, err = cli(
        "coverage", "--start", "2024-03-04", "--end", "2024-03-11", "--out", str(picture)
    )
    assert code == 0, err
    assert "coverage 2024-03-04..2024-03-11" in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = cli("coverage", "--start", "2024-3-4")
    assert code == 2 and "--start '2024-3-4' is not a date" in err


def test_the_store_belongs_to_the_project_not_the_current_directory(tmp_path, monkeypatch):
    """Run from another folder, the default store is still the project's `.marketdata/`."""
    from marketdata_pipeline.lib.settings import PROJECT_ROOT, load_settings

    monkeypatch.chdir(tmp_path)
    assert load_settings({}).home == (PROJECT_ROOT / ".marketdata").resolve()
    assert load_settings({"MARKETDATA_HOME": str(tmp_path / "h")}).home == tmp_path / "h"


def test_a_backfill_request_is_one_run_per_asset_class_on_its_partitions():
    from marketdata_pipeline.backfill_request import ALL_ASSETS, BackfillRequest
    from marketdata_pipeline.lib.candles.window import CandleWindow

    # Wednesday 2024-07-03 to Sunday 07-07: three sessions (Independence Day off).
    request = BackfillRequest(
        CandleWindow(dt.date(2024, 7, 3), dt.date(2024, 7, 7)),
        ALL_ASSETS,
        {"stock_daily_candles": ["AAPL"], "crypto_daily_candles": ["BTCUSD"]},
    )
    stock, crypto = request.runs()
    assert (stock.job, str(stock.window)) == ("stock_candles_job", "2024-07-03..2024-07-05")
    # Each run's config names only its own asset (Dagster refuses config for others).
    assert set(stock.run_config()["ops"]) == {"stock_daily_candles"}
    assert (crypto.job, str(crypto.window)) == ("crypto_candles_job", "2024-07-03..2024-07-07")
    assert set(crypto.run_config()["ops"]) == {"crypto_daily_candles"}
    assert request.skipped_lines() == []
    weekend = BackfillRequest(
        CandleWindow(dt.date(2024, 7, 6), dt.date(2024, 7, 7)), ALL_ASSETS, None
    )
    assert [run.job for run in weekend.runs()] == ["crypto_candles_job"]
    assert weekend.skipped_lines() == [
        "stock_daily_candles: no stock trading day (NYSE session) in 2024-07-06..2024-07-07, "
        "so no partition and no run"
    ]
