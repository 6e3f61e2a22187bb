"""A backfill killed with SIGKILL half-way does not pay again for what it fetched.

Real processes: the code location's job runs in a subprocess (settings from its environment,
a real Dagster instance in DAGSTER_HOME) against the simulator, which answers slowly so the kill
lands mid-fetch. The rerun, the same command, must send only the requests whose pages the first
process had not kept, and the stored rows must be exactly the vendor's.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.page_cache import PageCache
from marketdata_pipeline.lib.polygon.provenance import page_cache_params
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbols
from marketdata_pipeline_tests.conftest import make_polygon
from marketdata_pipeline_tests.helpers import read_table
from marketdata_pipeline_tests.reliability.conftest import REPO, cli_env
from marketdata_pipeline_tests.resources import fetch_candles

WINDOW = CandleWindow(dt.date(2024, 1, 2), dt.date(2024, 1, 31))
SYMBOLS = 64
CONCURRENCY = 16  # PolygonResource.max_concurrent_requests: at most this many in flight
RANGE_PARAMS = {"adjusted": "true", "sort": "asc", "limit": "50000"}
VALUES = ["symbol", "day", "open", "high", "low", "close", "volume", "vwap", "transactions"]


def start_job(
    env: dict[str, str],
    tickers: list[str],
    window: CandleWindow = WINDOW,
    asset: str = "stock_daily_candles",
) -> subprocess.Popen:
    """The candles job of `asset` over `window` for `tickers`, in its own process."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "marketdata_pipeline_tests.reliability._run_candles_job",
            asset,
            window.first.isoformat(),
            window.last.isoformat(),
            *tickers,
        ],
        env={**env, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def job_env(sim, database_url: str, tmp_path: Path) -> dict[str, str]:
    """The job's environment: the simulator as the API, pages and spool under `tmp_path`."""
    (tmp_path / "dagster_home").mkdir()
    return cli_env(
        tmp_path,
        MARKETDATA_DATABASE_URL=database_url,
        POLYGON_BASE_URL=sim.base_url,
        POLYGON_API_KEY=sim.api_key,
        POLYGON_REQUESTS_PER_MINUTE="60000",
        MARKETDATA_CACHE_DIR=str(tmp_path / "pages"),
        MARKETDATA_SPOOL_DIR=str(tmp_path / "spool"),
    )


def kill_half_way(job: subprocess.Popen, sim) -> None:
    """SIGKILL `job` once the simulator has counted half of the SYMBOLS requests."""
    deadline = time.monotonic() + 120
    while sim.stats(include_log=False)["requests"] < SYMBOLS // 2:
        assert job.poll() is None, f"the run ended before the kill: {job.stdout.read()}"
        assert time.monotonic() < deadline, "the run never got half-way"
        time.sleep(0.02)
    os.kill(job.pid, signal.SIGKILL)
    job.wait(30)
    assert job.returncode == -signal.SIGKILL


def range_path(ticker: str) -> str:
    return f"/v2/aggs/ticker/{ticker}/range/1/day/{WINDOW.first}/{WINDOW.last}"


def test_a_killed_backfill_resumes_without_fetching_again(sim, database_url, tmp_path: Path):
    tickers = list(sim.state.stock_tickers()[:SYMBOLS])
    env = job_env(sim, database_url, tmp_path)
    cache_dir, spool_dir = tmp_path / "pages", tmp_path / "spool"
    # Slow answers: 64 requests, 16 at a time, take about 2.4 s, so the kill lands mid-way.
    # (January only: a short window keeps Dagster's per-partition bookkeeping small.)
    sim.add_fault(kind="delay", seconds=0.6, endpoint="range")

    kill_half_way(start_job(env, tickers), sim)

    # Candle pages only: the run's split and dividend refresh is reference data, never cached.
    first_paths = {e["path"] for e in sim.stats()["log"] if e["path"].startswith("/v2/aggs/")}
    pages = PageCache(cache_dir, api_key=sim.api_key, base_url=sim.base_url)
    # The simulator said what it is: its pages are kept under that (`page_cache_params`).
    params = page_cache_params(RANGE_PARAMS, simulated=True)
    kept = {
        t
        for t in tickers
        if (cache_dir / (k := pages.key(range_path(t), params))[:2] / f"{k}.page").exists()
    }
    assert SYMBOLS // 2 - CONCURRENCY <= len(kept) < SYMBOLS, "killed half-way, pages kept"
    assert read_table(database_url, "stock_daily_candles").height == 0, "nothing was written"
    # The killed process never cleaned up its spool directory (the setting's place).
    assert [p.name.startswith("marketdata-spool-") for p in spool_dir.iterdir()] == [True]

    sim.reset()
    second = start_job(env, tickers)
    output, _ = second.communicate(timeout=180)
    assert second.returncode == 0, output
    second_paths = {e["path"] for e in sim.stats()["log"] if e["path"].startswith("/v2/aggs/")}

    # Nothing whose page was kept is asked for again; only the rest of the plan is.
    assert second_paths == {range_path(t) for t in set(tickers) - kept}
    # Requests in flight at the kill (answered, but never read) are the only ones paid twice.
    assert len(first_paths & second_paths) <= CONCURRENCY
    assert len(first_paths) + len(second_paths) <= SYMBOLS + CONCURRENCY
    assert f"reused {len(kept)} cached pages ({len(kept)} requests saved)" in output
    assert not list(cache_dir.rglob("*.page")), "pages are removed once the rows are committed"
    # The rerun removed the killed run's spool directory, and its own after the write.
    assert spool_dir.is_dir() and not list(spool_dir.iterdir())

    sim.reset()
    expected = fetch_candles(
        make_polygon(sim),
        AssetClass.STOCK,
        parse_symbols(tickers, "stock"),
        WINDOW,
        force_strategy="range",
    )
    stored = read_table(database_url, "stock_daily_candles")
    assert (
        stored.select(VALUES)
        .sort("symbol", "day")
        .equals(
            expected.frame.select(VALUES).sort("symbol", "day").cast(stored.select(VALUES).schema)
        )
    )
    assert stored.height == SYMBOLS * 21  # NYSE sessions in January 2024
    assert stored.select(pl.col("symbol").n_unique()).item() == SYMBOLS


def candle_tickers(sim) -> list[str]:
    """The tickers of the candle requests in the simulator's log, one per request."""
    return [
        e["path"].split("/")[4] for e in sim.stats()["log"] if e["path"].startswith("/v2/aggs/")
    ]


def test_a_killed_backfill_of_a_window_ending_yesterday_resumes_too(
    sim, database_url, tmp_path: Path
):
    """The revision window's pages are kept for the rerun minutes later (not days later)."""
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    window = CandleWindow(yesterday - dt.timedelta(days=29), yesterday)
    pairs = [t.removeprefix("X:") for t in sim.state.crypto_tickers()[:SYMBOLS]]
    env = job_env(sim, database_url, tmp_path)
    cache_dir = tmp_path / "pages"
    sim.add_fault(kind="delay", seconds=0.6, endpoint="range")

    kill_half_way(start_job(env, pairs, window, "crypto_daily_candles"), sim)
    first_paid = candle_tickers(sim)
    kept = len(list(cache_dir.rglob("*.page")))
    assert SYMBOLS // 2 - CONCURRENCY <= kept < SYMBOLS, "killed half-way, recent pages kept"

    sim.reset()
    second = start_job(env, pairs, window, "crypto_daily_candles")
    output, _ = second.communicate(timeout=180)
    assert second.returncode == 0, output
    second_paid = candle_tickers(sim)
    # The plan is one request a pair; over both runs at most the requests in flight at the
    # kill are paid twice (they were answered, but their pages never reached the disk).
    assert len(second_paid) == SYMBOLS - kept
    assert len(first_paid) + len(second_paid) <= SYMBOLS + CONCURRENCY
    assert f"reused {kept} cached pages ({kept} requests saved)" in output
    assert not list(cache_dir.rglob("*.page")), "pages are removed once the rows are committed"
    stored = read_table(database_url, "crypto_daily_candles")
    assert stored.select(pl.col("symbol").n_unique()).item() == SYMBOLS
    assert stored.get_column("day").max() == yesterday
