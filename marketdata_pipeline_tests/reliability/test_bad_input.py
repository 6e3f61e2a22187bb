"""Bad input everywhere it enters: symbols, dates and ranges, configuration.

Three entry points are attacked: the parsing functions themselves (every variant, fast), the
Dagster run config and the tracked-symbols table (what the UI, the sensor and plain SQL feed in),
and the `marketdata` console script in a subprocess (what a user types). A refusal is a clear
one-line message and the documented exit code (2 invalid input, 3 configuration, 1 run failed),
with no traceback and nothing written.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from marketdata_pipeline.backfill_request import validate_range
from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.errors import ConfigError, InputError
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import parse_symbol
from marketdata_pipeline_tests.helpers import (
    check_evaluations,
    materialise,
    query,
    read_table,
    stock_daily_candles,
)
from marketdata_pipeline_tests.reliability.conftest import (
    cli_env,
    finish_cli,
    run_cli,
    start_cli,
    symbol_status,
    track,
)
from marketdata_pipeline_tests.resources import make_polygon

HUGE = "A" * 100_000

BAD_SYMBOLS = {
    "path traversal": ("../etc", "not a plausible ticker"),
    "absolute path": ("/etc/passwd", "not a plausible ticker"),
    "SQL injection": ("AAPL'; DROP TABLE x;--", "not a plausible ticker"),
    "SQL comment": ("AAPL--", "not a plausible ticker"),
    "unicode look-alike": ("\u0391APL", "non-ASCII"),  # a Greek capital alpha
    "unicode letters": ("ÄPPL", "non-ASCII"),
    "zero-width space": ("AA\u200bPL", "non-ASCII"),
    "leading whitespace": (" AAPL", "surrounding whitespace"),
    "trailing newline": ("AAPL\n", "surrounding whitespace"),
    "inner space": ("AA PL", "not a plausible ticker"),
    "NUL byte": ("AA\x00PL", "not a plausible ticker"),
    "empty": ("", "empty"),
    "huge": (HUGE, "too long"),
    "crypto without a quote currency": ("X:BTCXYZ", "not a plausible pair"),
    "URL-encoded": ("%2e%2e%2f", "not a plausible ticker"),
}


@pytest.mark.parametrize(("raw", "expected"), BAD_SYMBOLS.values(), ids=BAD_SYMBOLS.keys())
def test_bad_symbol_is_refused_with_a_short_specific_message(raw, expected):
    with pytest.raises(InputError) as raised:
        parse_symbol(raw)
    message = str(raised.value)
    assert expected in message
    assert len(message) < 300  # a huge input is cut, never echoed in full
    assert "\n" not in message.replace("\\n", "")


def test_good_symbols_are_canonicalised():
    assert parse_symbol("aapl").symbol == "AAPL"
    assert parse_symbol("BRK.A").symbol == "BRK.A"
    crypto = parse_symbol("X:btcusd")
    assert (crypto.symbol, crypto.api_ticker) == ("BTCUSD", "X:BTCUSD")


FIRST = dt.date(2020, 1, 1)
TODAY = dt.date(2024, 6, 15)
BAD_RANGES = {
    "month 13": ("2024-13-01", "2024-03-01", "is not a date"),
    "no zero padding": ("2024-1-1", "2024-03-01", "is not a date"),
    "day 30 of February": ("2024-02-30", "2024-03-01", "is not a date"),
    "slashes": ("2024/01/02", "2024-03-01", "is not a date"),
    "timestamp": ("2024-01-02T00:00", "2024-03-01", "is not a date"),
    "empty": ("", "2024-03-01", "is not a date"),
    "words": ("yesterday", "2024-03-01", "is not a date"),
    "reversed": ("2024-03-01", "2024-02-01", "is before --start"),
    "before MARKETDATA_START_DATE": ("2019-12-31", "2024-03-01", "before MARKETDATA_START_DATE"),
    "in the future": ("2024-06-01", "2024-07-01", "after the last complete day"),
    "today (not complete yet)": ("2024-06-01", "2024-06-15", "after the last complete day"),
}


@pytest.mark.parametrize(("start", "end", "expected"), BAD_RANGES.values(), ids=BAD_RANGES.keys())
def test_bad_date_range_is_refused(start, end, expected):
    with pytest.raises(InputError, match=expected):
        validate_range(start, end, first=FIRST, today=TODAY)


def test_edges_of_the_allowed_range_are_accepted():
    assert validate_range("2020-01-01", "2024-06-14", first=FIRST, today=TODAY) == CandleWindow(
        FIRST,
        dt.date(2024, 6, 14),
    )


BAD_CONFIG = {
    "database URL with another scheme": ({"MARKETDATA_DATABASE_URL": "mysql://x/y"}, "postgresql"),
    "database URL that is not a URL": ({"MARKETDATA_DATABASE_URL": "not a url"}, "postgresql"),
    "ftp base URL": ({"POLYGON_BASE_URL": "ftp://x"}, "is not an http"),
    "base URL that is not a URL": ({"POLYGON_BASE_URL": "not a url"}, "is not an http"),
    "base URL with a key in it": (
        {"POLYGON_BASE_URL": "https://api.massive.com/?apiKey=abc"},
        "must not carry a query",
    ),
    "base URL with a bad port": ({"POLYGON_BASE_URL": "http://x:99999"}, "invalid port"),
    "requests per minute not a number": ({"POLYGON_REQUESTS_PER_MINUTE": "abc"}, "whole number"),
    "requests per minute fractional": ({"POLYGON_REQUESTS_PER_MINUTE": "1.5"}, "whole number"),
    "requests per minute zero": ({"POLYGON_REQUESTS_PER_MINUTE": "0"}, "between 1 and"),
    "requests per minute negative": ({"POLYGON_REQUESTS_PER_MINUTE": "-5"}, "between 1 and"),
    "start date malformed": ({"MARKETDATA_START_DATE": "2020-13-01"}, "is not a date"),
    "start date before the calendar": ({"MARKETDATA_START_DATE": "1900-01-01"}, "is before"),
}


@pytest.mark.parametrize(("env", "expected"), BAD_CONFIG.values(), ids=BAD_CONFIG.keys())
def test_bad_configuration_is_a_config_error(env, expected):
    with pytest.raises(ConfigError, match=expected):
        load_settings(env)


def test_resource_refuses_bad_configuration_before_any_request(sim):
    for overrides, expected in [
        (dict(api_key="  "), "no Polygon API key"),
        (dict(base_url="ftp://x"), "is not an http"),
        (dict(requests_per_minute=0), "between 1 and"),
    ]:
        # Refused when the resource is built (or, for a key, when the client is).
        with pytest.raises(ConfigError, match=expected):
            make_polygon(sim, **overrides).get_client()
    assert sim.stats()["requests"] == 0


# -- through Dagster: run config and the tracked-symbols table --------------------------------


@pytest.mark.parametrize("raw", ["../etc", "AAPL'; DROP TABLE x;--", "ÄPPL", "", HUGE])
def test_bad_symbol_in_run_config_fails_the_run_before_any_request(
    sim, resources, database_url, raw
):
    day = dt.date(2024, 3, 4)
    result = materialise(
        day, day, resources, assets=[stock_daily_candles], symbols={"stock_daily_candles": [raw]}
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "run config symbols:" in message
    assert len(message) < 1000
    assert sim.stats()["requests"] == 0
    assert read_table(database_url, "stock_daily_candles").height == 0
    assert query(database_url, "SELECT to_regclass('marketdata.stock_daily_candles')") != [(None,)]


def test_tracked_symbols_table_refuses_malformed_rows(database_url):
    with psycopg.connect(database_url) as conn:
        for bad in ["AAPL'; DROP TABLE x;--", "../etc", "aapl", "", "ÄPPL", "A" * 21]:
            with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
                conn.execute(
                    "INSERT INTO marketdata.tracked_symbols (symbol, asset_class) VALUES (%s, %s)",
                    (bad, "stock"),
                )
        with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
            conn.execute(
                "INSERT INTO marketdata.tracked_symbols (symbol, asset_class)"
                " VALUES ('AAPL', 'bond')"
            )


def test_invalid_row_added_by_sql_fails_alone_and_the_others_are_written(
    sim, resources, database_url
):
    track(database_url, ["AAPL"])
    # Passes the table's CHECK (letters, digits, dots) but not the stock-ticker rule.
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO marketdata.tracked_symbols (symbol, asset_class) VALUES ('1A..B', 'stock')"
        )
    day = dt.date(2024, 3, 4)
    result = materialise(day, day, resources, assets=[stock_daily_candles])
    assert not result.success  # the bad row is a failed symbol: visible, not silent
    assert read_table(database_url, "stock_daily_candles").get_column("symbol").to_list() == [
        "AAPL"
    ]
    status = symbol_status(database_url)
    assert status["AAPL"] == ("ok", None)
    assert status["1A..B"][0] == "error"
    assert "invalid tracked symbol" in status["1A..B"][1]
    assert not check_evaluations(result)["stock_daily_candles:symbols_fetched"].passed
    assert {e["ticker"] for e in sim.stats()["log"]} == {"AAPL"}


# -- through the console script ---------------------------------------------------------------

SECRET_PASSWORD = "secretpw-d41d8cd9"
LAST = last_complete_day()
FUTURE = (LAST + dt.timedelta(days=30)).isoformat()

#: id -> (argv, env overrides, exit code, text of the one error line)
CLI_CASES = {
    # symbols
    "add: path traversal": (["symbols", "add", "../etc"], {}, 2, "not a plausible ticker"),
    "add: SQL injection": (
        ["symbols", "add", "AAPL'; DROP TABLE x;--"],
        {},
        2,
        "not a plausible ticker",
    ),
    "add: unicode": (["symbols", "add", "ÄPPL"], {}, 2, "non-ASCII"),
    "add: whitespace": (["symbols", "add", " AAPL"], {}, 2, "surrounding whitespace"),
    "add: empty": (["symbols", "add", ""], {}, 2, "empty"),
    "add: huge": (["symbols", "add", "A" * 10_000], {}, 2, "too long"),
    "add: one bad among good (all or nothing)": (
        ["symbols", "add", "AAPL", "MSFT", "../etc"],
        {},
        2,
        "'../etc'",
    ),
    "add: X: prefix with --asset-class stock": (
        ["symbols", "add", "X:BTCUSD", "--asset-class", "stock"],
        {},
        2,
        "crypto prefix",
    ),
    "remove: SQL injection": (
        ["symbols", "remove", "x' OR '1'='1"],
        {},
        2,
        "not a plausible ticker",
    ),
    # dates and ranges
    "backfill: month 13": (
        ["backfill", "--start", "2024-13-01", "--end", "2024-12-01"],
        {},
        2,
        "is not a date",
    ),
    "backfill: no zero padding": (
        ["backfill", "--start", "2024-1-1", "--end", "2024-12-01"],
        {},
        2,
        "is not a date",
    ),
    "backfill: reversed": (
        ["backfill", "--start", "2024-02-01", "--end", "2024-01-01"],
        {},
        2,
        "is before --start",
    ),
    "backfill: before MARKETDATA_START_DATE": (
        ["backfill", "--start", "2019-12-31", "--end", "2024-01-01"],
        {},
        2,
        "before MARKETDATA_START_DATE 2020-01-01",
    ),
    "backfill: in the future": (
        ["backfill", "--start", "2024-01-02", "--end", FUTURE],
        {},
        2,
        "after the last complete day",
    ),
    "backfill: bad --symbols": (
        ["backfill", "--start", "2024-01-02", "--end", "2024-01-03", "--symbols", "../etc"],
        {"POLYGON_API_KEY": "sk-unused"},
        2,
        "not a plausible pair",
    ),
    # configuration
    "database URL: mysql": (
        ["symbols", "list"],
        {"MARKETDATA_DATABASE_URL": "mysql://x/y"},
        3,
        "must be a postgresql:// URL",
    ),
    "database URL: unreachable, with a password": (
        ["symbols", "list"],
        {"MARKETDATA_DATABASE_URL": f"postgresql://user:{SECRET_PASSWORD}@127.0.0.1:1/db"},
        3,
        "cannot connect to Postgres at postgresql://user:***@127.0.0.1:1/db",
    ),
    "missing API key for a configured API": (
        ["backfill", "--start", "2024-01-02", "--end", "2024-01-03"],
        {"POLYGON_API_KEY": None, "POLYGON_BASE_URL": "https://api.massive.com"},
        3,
        "no Polygon API key",
    ),
    "base URL: ftp://x": (
        ["backfill", "--start", "2024-01-02", "--end", "2024-01-03"],
        {"POLYGON_BASE_URL": "ftp://x", "POLYGON_API_KEY": "sk-unused"},
        3,
        "POLYGON_BASE_URL 'ftp://x' is not an http(s) URL",
    ),
    "base URL: not a url": (
        ["symbols", "list"],
        {"POLYGON_BASE_URL": "not a url"},
        3,
        "is not an http(s) URL",
    ),
    "requests per minute: abc": (
        ["symbols", "list"],
        {"POLYGON_REQUESTS_PER_MINUTE": "abc"},
        3,
        "POLYGON_REQUESTS_PER_MINUTE 'abc' is not a whole number",
    ),
    "requests per minute: 0": (
        ["backfill", "--start", "2024-01-02", "--end", "2024-01-03"],
        {"POLYGON_REQUESTS_PER_MINUTE": "0"},
        3,
        "must be between 1 and",
    ),
    "start date malformed": (
        ["symbols", "list"],
        {"MARKETDATA_START_DATE": "2020-13-01"},
        3,
        "MARKETDATA_START_DATE '2020-13-01' is not a date",
    ),
}


@pytest.fixture(scope="module")
def cli_database(pg_server, template_database):
    """One database for every refusal case, with a known content that must survive them all."""
    name = f"t_cli_{uuid.uuid4().hex[:10]}"
    admin = pg_server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    url = pg_server.get_uri(name)
    track(url, ["NVDA"])
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _snapshot(url: str) -> dict:
    with psycopg.connect(url) as conn:
        return {
            "symbols": conn.execute(
                "SELECT symbol, asset_class, active, status FROM marketdata.tracked_symbols"
                " ORDER BY 1"
            ).fetchall(),
            "candles": conn.execute(
                "SELECT (SELECT count(*) FROM marketdata.stock_daily_candles),"
                " (SELECT count(*) FROM marketdata.crypto_daily_candles)"
            ).fetchone(),
            "tables": conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            ).fetchall(),
        }


@pytest.fixture(scope="module")
def cli_results(cli_database):
    """Every CLI case, run as real subprocesses, a few at a time (they are mostly imports)."""
    before = _snapshot(cli_database)
    # Not under pytest's basetemp, which a concurrent pytest session may prune.
    root = Path(tempfile.mkdtemp(prefix="md-rel-cli-"))

    def run(case):
        argv, env, _, _ = CLI_CASES[case]
        home = Path(tempfile.mkdtemp(dir=root))
        full_env = cli_env(home, **{"MARKETDATA_DATABASE_URL": cli_database, **env})
        return case, finish_cli(start_cli(argv, full_env), timeout=120), home

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = {case: (result, home) for case, result, home in pool.map(run, CLI_CASES)}
    yield before, results, _snapshot(cli_database)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_refuses_with_one_clear_line_and_the_documented_exit_code(cli_results, case):
    _, results, _ = cli_results
    result, home = results[case]
    _, _, code, expected = CLI_CASES[case]
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.error_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("marketdata: error: ")
    assert expected in lines[0]
    assert len(lines[0]) < 400
    assert SECRET_PASSWORD not in result.stderr + result.stdout
    # Refused before anything ran: no Dagster instance was even created.
    assert not (home / "dagster_home").exists()


def test_cli_refusals_wrote_nothing(cli_results):
    before, _, after = cli_results
    assert after == before


def test_cli_usage_errors_exit_2_without_a_traceback(tmp_path, database_url):
    env = cli_env(tmp_path, MARKETDATA_DATABASE_URL=database_url)
    for argv in (
        ["symbols", "add", "AAPL", "--asset-class", "bond"],
        ["backfill", "--start", "2024-01-02"],
        ["no-such-command"],
    ):
        result = run_cli(argv, env)
        assert result.returncode == 2, (argv, result.stderr)
        assert "Traceback" not in result.stderr
        assert result.error_lines[-1].startswith("marketdata: error: ")
