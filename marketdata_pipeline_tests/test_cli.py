"""The `marketdata` command line (in process) against a real Postgres."""

from __future__ import annotations

import json

import pytest

from marketdata_pipeline.cli import main
from marketdata_pipeline_tests.helpers import query


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    """Run `marketdata ARGS...`; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("MARKETDATA_DATABASE_URL", database_url)
    monkeypatch.setenv("MARKETDATA_DAGSTER_STORAGE_URL", "unused")

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


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
    code, out, err = cli("symbols", "add", *args)
    assert code == 2
    assert expected in err
    assert "Traceback" not in err
    assert tracked(database_url) == []


def test_unknown_asset_class_is_refused(cli, database_url):
    code, _, err = cli("symbols", "add", "AAPL", "--asset-class", "bond")
    assert code == 2 and "invalid choice: 'bond'" in err
    assert tracked(database_url) == []
