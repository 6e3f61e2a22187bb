"""Interruptions and dead ends of `marketdata backfill`, told truthfully, in one line.

Real processes: the console script in a subprocess, a real SIGINT or SIGKILL sent to it, the
simulator over HTTP (slowed down with its latency setting so a signal lands mid-fetch), the run
storage read back from Postgres.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import psycopg

from marketdata_pipeline_tests.helpers import query
from marketdata_pipeline_tests.reliability.conftest import (
    CliResult,
    cli_env,
    finish_cli,
    run_cli,
    start_cli,
    symbol_status,
    track,
)
from polygon_simulator.market import stock_universe

WEEK = ["--start", "2024-03-04", "--end", "2024-03-08"]
STOCKS = ["--asset", "stock_daily_candles"]


def _env(tmp_path: Path, database_url: str, sim, **extra: str) -> dict[str, str]:
    env = {
        "MARKETDATA_DATABASE_URL": database_url,
        "POLYGON_API_KEY": sim.api_key,
        "POLYGON_BASE_URL": sim.base_url,
        "POLYGON_REQUESTS_PER_MINUTE": "60000",
        **extra,
    }
    return cli_env(tmp_path, **env)


def _start_and_signal_mid_fetch(args: list[str], env: dict[str, str], sig: int) -> CliResult:
    """Start the command, wait until its stock run logs its plan (the fetch starts right after),
    send `sig`, and collect what the process did."""
    process = start_cli(args, env)
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "stock plan:" in line:
            break
    else:
        raise AssertionError(f"the run never reached its fetch: {''.join(seen)[-3000:]}")
    os.kill(process.pid, sig)
    result = finish_cli(process, timeout=120)
    return CliResult(result.args, result.returncode, result.stdout, "".join(seen) + result.stderr)


def _run_status(database_url: str, job: str) -> list[str]:
    with psycopg.connect(database_url) as conn:  # the CLI's run storage is the candle database
        rows = conn.execute(
            "SELECT status FROM runs WHERE pipeline_name = %s ORDER BY create_timestamp", (job,)
        ).fetchall()
    return [status for (status,) in rows]


def test_ctrl_c_exits_130_with_one_line_and_no_stale_reasons(sim, database_url, tmp_path):
    track(database_url, ["AAPL", "MSFT"])
    track(database_url, ["BTCUSD"], "crypto")  # so a crypto run follows the stock run
    env = _env(tmp_path, database_url, sim)
    # A first run that fails with a refused key leaves reasons on every symbol's row.
    sim.add_fault(kind="status", status_code=401)
    assert run_cli(["backfill", *WEEK, *STOCKS], env).returncode != 0
    assert {e for _, e in symbol_status(database_url).values()} != {None}
    sim.reset()

    sim.configure(latency_seconds=2.0)  # each answer takes 2 s: the signal lands mid-fetch
    result = _start_and_signal_mid_fetch(["backfill", *WEEK], env, signal.SIGINT)

    assert result.returncode == 130, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert "DagsterExecutionInterruptedError" not in output
    (line,) = [x for x in output.splitlines() if "interrupted" in x.lower()]
    assert line.startswith("marketdata: interrupted: nothing was written for stock_candles_job")
    assert "crypto_candles_job not started" in line
    # No stale reasons: nothing of the previous run's outcome is listed.
    # (As a word: a run id such as 17401004-... may hold the digits.)
    assert not re.search(r"\b401\b", output) and "FAILED" not in output
    assert query(database_url, "SELECT count(*) FROM marketdata.stock_daily_candles") == [(0,)]
    assert _run_status(database_url, "stock_candles_job")[-1] == "FAILURE"
    assert _run_status(database_url, "crypto_candles_job") == [], "the next run never started"


def test_a_killed_cli_run_is_marked_failed_by_the_next_command(sim, database_url, tmp_path):
    track(database_url, ["AAPL"])
    env = _env(tmp_path, database_url, sim)
    sim.configure(latency_seconds=5.0)
    killed = _start_and_signal_mid_fetch(["backfill", *WEEK, *STOCKS], env, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    assert _run_status(database_url, "stock_candles_job") == ["STARTED"], "left STARTED"

    sim.configure(latency_seconds=0.0)
    result = run_cli(["backfill", *WEEK, *STOCKS], env)
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [x for x in result.stderr.splitlines() if "process that died" in x]
    assert "(stock_candles_job, 2024-03-04..2024-03-08) was left STARTED" in line
    assert line.endswith("marked failed")
    assert _run_status(database_url, "stock_candles_job") == ["FAILURE", "SUCCESS"]


def test_a_live_cli_run_is_not_marked_failed(sim, database_url, tmp_path):
    """Two commands at once: the second leaves the first's run alone (its process lives)."""
    track(database_url, ["AAPL"])
    env = _env(tmp_path, database_url, sim)
    sim.configure(latency_seconds=3.0)
    first = start_cli(["backfill", *WEEK, *STOCKS], env)
    assert first.stderr is not None
    for line in first.stderr:
        if "stock plan:" in line:
            break
    second = run_cli(["backfill", *WEEK, "--asset", "crypto_daily_candles"], env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "process that died" not in second.stderr
    assert finish_cli(first).returncode == 0
    assert _run_status(database_url, "stock_candles_job") == ["SUCCESS"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket is: nothing listens


def test_a_url_where_nothing_listens_fails_fast_with_one_line(database_url, tmp_path):
    track(database_url, ["AAPL", "MSFT"])
    url = f"http://127.0.0.1:{_closed_port()}"
    env = cli_env(
        tmp_path,
        MARKETDATA_DATABASE_URL=database_url,
        POLYGON_API_KEY="some-key",
        POLYGON_BASE_URL=url,
    )
    try:
        result = run_cli(["backfill", *WEEK], env, timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError("a refused connection was retried for more than 30 s") from None
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [x for x in output.splitlines() if url in x]
    assert line.startswith("marketdata: error: ")
    assert "connection refused" in line


def test_a_refused_key_under_the_grouped_plan_costs_one_request_and_one_line(
    sim, database_url, tmp_path
):
    """40 stocks over a week: the grouped plan (5 requests). A wrong key is refused on the
    first request, and nothing else is sent, neither for the other days nor for the run's
    split and dividend refresh."""
    many = [t for t in stock_universe(60) if "." not in t][:40]
    track(database_url, many)
    env = _env(tmp_path, database_url, sim, POLYGON_API_KEY="not-the-key")
    result = run_cli(["backfill", *WEEK, *STOCKS], env)
    assert result.returncode != 0
    assert "stock plan: grouped" in result.stdout
    assert sim.stats(include_log=False)["requests"] == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [x for x in output.splitlines() if re.search(r"\b401\b", x)]
    assert line.startswith("marketdata: error: ")
    assert "Unknown API Key" in line and "POLYGON_API_KEY" in line
    assert "not-the-key" not in output


def test_a_refused_first_day_under_the_grouped_plan_is_the_only_day_requested(
    sim, database_url, tmp_path
):
    """A 403 (the plan is not entitled to the data) on the grouped plan's first day: no other
    day is sent, and the summary says it once for all 40 symbols."""
    many = [t for t in stock_universe(60) if "." not in t][:40]
    track(database_url, many)
    sim.add_fault(
        kind="status",
        status_code=403,
        endpoint="grouped",
        message="You are not entitled to this data.",
    )
    result = run_cli(["backfill", *WEEK, *STOCKS], _env(tmp_path, database_url, sim))
    assert result.returncode == 1, result.stderr[-3000:]
    assert sim.stats(include_log=False)["by_kind"]["grouped"] == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    (line,) = [x for x in output.splitlines() if re.search(r"\b403\b", x)]
    assert line.startswith("  FAILED 40 symbols (")
    assert "grouped daily request failed (1 of 5 days)" in line and "not entitled" in line
