"""The command line with vendor-case tickers and the plan's history start."""

from __future__ import annotations

from marketdata_pipeline_tests.helpers import query


def test_symbols_keep_the_vendor_case_and_friendly_input_still_works(cli, database_url):
    code, out, _ = cli("symbols", "add", "KIMpL", "brk.a", "aapl")
    assert code == 0
    assert "KIMpL (stock): added" in out and "BRK.A (stock): added" in out
    assert query(database_url, "SELECT symbol FROM marketdata.tracked_symbols ORDER BY 1") == [
        ("AAPL",),
        ("BRK.A",),
        ("KIMpL",),
    ]
    code, out, _ = cli("symbols", "remove", "KIMpL")
    assert code == 0 and "KIMpL (stock): removed" in out


def test_backfill_before_the_plan_history_start_is_refused(cli, sim, monkeypatch):
    monkeypatch.setenv("POLYGON_HISTORY_START", "2024-06-03")
    code, _out, err = cli("backfill", "--start", "2024-05-01", "--end", "2024-06-07")
    assert code == 2
    assert "--start 2024-05-01 is before POLYGON_HISTORY_START 2024-06-03" in err
    assert "use --start 2024-06-03 or later" in err and "Traceback" not in err
    assert sim.stats()["requests"] == 0
    monkeypatch.setenv("POLYGON_HISTORY_START", "June")
    code, _out, err = cli("backfill", "--start", "2024-06-03", "--end", "2024-06-07")
    assert code == 3 and "POLYGON_HISTORY_START 'June' is not a date" in err
