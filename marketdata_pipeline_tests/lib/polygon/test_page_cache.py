"""The on-disk page cache: keys, the revision window, bounds, atomic writes, and the resource
reusing pages over the real simulator."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path

import pytest

from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.page_cache import PageCache, last_day_of
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbols
from marketdata_pipeline_tests.conftest import make_polygon
from marketdata_pipeline_tests.helpers import materialise, stock_daily_candles
from marketdata_pipeline_tests.resources import fetch_candles

FRESH_AFTER = dt.date(2024, 6, 30)
RANGE = "/v2/aggs/ticker/AAPL/range/1/day/2024-01-02/2024-03-28"
PARAMS = {"adjusted": "true", "sort": "asc", "limit": "50000"}
RANGE_PLAN = {"stock_daily_candles": {"strategy": "range"}}


def cache(tmp_path: Path, **overrides) -> PageCache:
    config = dict(api_key="key-a", base_url="http://api.test", fresh_after=FRESH_AFTER)
    config.update(overrides)
    return PageCache(tmp_path / "cache", **config)


@pytest.mark.parametrize(
    ("path", "last"),
    [
        (RANGE, dt.date(2024, 3, 28)),
        ("/v2/aggs/ticker/X:BTCUSD/range/1/day/1704153600000/1711584000000", dt.date(2024, 3, 28)),
        ("/v2/aggs/grouped/locale/us/market/stocks/2024-07-03", dt.date(2024, 7, 3)),
        ("/v2/aggs/grouped/locale/global/market/crypto/2024-01-05", dt.date(2024, 1, 5)),
        ("/v3/reference/tickers", None),
    ],
)
def test_the_last_day_of_a_request_is_read_from_its_path(path: str, last: dt.date | None):
    assert last_day_of(path) == last


def test_a_stored_page_is_reused_only_for_the_same_request(tmp_path: Path):
    pages = cache(tmp_path)
    pages.store(RANGE, PARAMS, b'{"status":"OK"}')
    assert pages.load(RANGE, PARAMS) == b'{"status":"OK"}'
    assert pages.load(RANGE, {**PARAMS, "adjusted": "false"}) is None
    assert pages.load(RANGE.replace("AAPL", "MSFT"), PARAMS) is None
    # Another key or another API root never reads this key's pages.
    assert cache(tmp_path, api_key="key-b").load(RANGE, PARAMS) is None
    assert cache(tmp_path, base_url="http://other.test").load(RANGE, PARAMS) is None
    # The key itself never reaches the disk, not even in a file name.
    for file in (tmp_path / "cache").rglob("*"):
        assert "key-a" not in file.name
        if file.is_file():
            assert b"key-a" not in file.read_bytes()
    assert not list((tmp_path / "cache").rglob(".tmp-*")), "no temporary file is left behind"


def age(directory: Path, seconds: float) -> None:
    """Make every stored page `seconds` older."""
    for file in directory.rglob("*.page"):
        then = file.stat().st_mtime - seconds
        os.utime(file, (then, then))


def test_the_revision_window_is_reused_for_the_recent_age_only(tmp_path: Path):
    pages = cache(tmp_path, recent_max_age=dt.timedelta(minutes=60))
    recent = "/v2/aggs/ticker/AAPL/range/1/day/2024-06-03/2024-07-02"
    grouped = "/v2/aggs/grouped/locale/us/market/stocks/2024-07-01"
    pages.store(recent, PARAMS, b"recent")
    pages.store(grouped, {}, b"grouped")
    pages.store(RANGE, PARAMS, b"final")
    # Minutes old: a killed run's rerun is served what it fetched.
    age(tmp_path / "cache", 50 * 60)
    assert pages.load(recent, PARAMS) == b"recent"
    assert pages.load(grouped, {}) == b"grouped"
    # Past the recent age the vendor may have revised them: fetched fresh, and removed.
    age(tmp_path / "cache", 20 * 60)
    assert pages.load(recent, PARAMS) is None
    assert pages.load(grouped, {}) is None
    assert pages.load(RANGE, PARAMS) == b"final", "days before the window keep the full age"
    assert pages.page_count() == 1
    # Without a cut-off date nothing is known to be final: every page is recent.
    unbounded = cache(tmp_path, fresh_after=None)
    assert unbounded.max_age_of(RANGE) == unbounded.recent_max_age < unbounded.max_age


def test_a_refresh_reads_nothing_and_replaces_the_stored_page(tmp_path: Path):
    pages = cache(tmp_path)
    pages.store(RANGE, PARAMS, b"old")
    with pages.collect(refresh=True) as keys:
        assert pages.load(RANGE, PARAMS) is None
        pages.store(RANGE, PARAMS, b"new")
    assert keys == [pages.key(RANGE, PARAMS)]
    assert pages.load(RANGE, PARAMS) == b"new"


def test_a_scope_names_the_api_whatever_its_address(tmp_path: Path):
    one = cache(tmp_path, base_url="http://127.0.0.1:41001", scope="simulator:world-a")
    one.store(RANGE, PARAMS, b"page")
    other_port = cache(tmp_path, base_url="http://127.0.0.1:52002", scope="simulator:world-a")
    assert other_port.load(RANGE, PARAMS) == b"page"
    assert cache(tmp_path, scope="simulator:world-b").load(RANGE, PARAMS) is None
    assert cache(tmp_path, base_url="http://127.0.0.1:41001").load(RANGE, PARAMS) is None


def test_old_pages_are_not_reused(tmp_path: Path):
    pages = cache(tmp_path, max_age=dt.timedelta(hours=1))
    pages.store(RANGE, PARAMS, b"{}")
    (file,) = (tmp_path / "cache").rglob("*.page")
    two_hours_ago = time.time() - 7200
    os.utime(file, (two_hours_ago, two_hours_ago))
    assert pages.load(RANGE, PARAMS) is None
    assert not file.exists(), "an expired page is removed when found"


def test_the_oldest_pages_are_evicted_past_the_size_bound(tmp_path: Path):
    body = os.urandom(4000)  # incompressible: each page takes about 4 kB on disk
    pages = cache(tmp_path, max_bytes=10_000)
    paths = [f"/v2/aggs/grouped/locale/us/market/stocks/2024-01-0{d}" for d in range(2, 6)]
    for age, path in enumerate(paths):
        pages.store(path, {}, body)
        then = time.time() - 1000 + age  # stored in order, oldest first
        for file in (tmp_path / "cache").rglob("*.page"):
            if file.stat().st_mtime > then + 500:
                os.utime(file, (then, then))
    assert pages.size_bytes() <= 10_000
    assert pages.load(paths[0], {}) is None, "the oldest page went first"
    assert pages.load(paths[-1], {}) == body


def test_temporaries_left_by_a_killed_writer_are_removed(tmp_path: Path):
    pages = cache(tmp_path)
    pages.store(RANGE, PARAMS, b"{}")
    (file,) = (tmp_path / "cache").rglob("*.page")
    leftover = file.parent / ".tmp-killed"
    leftover.write_bytes(b"half a page")
    an_hour_ago = time.time() - 3600
    os.utime(leftover, (an_hour_ago, an_hour_ago))
    assert pages.page_count() == 1, "a temporary file is never a page"
    pages.evict()
    assert not leftover.exists()
    assert file.exists()


def test_forget_removes_exactly_the_given_pages(tmp_path: Path):
    pages = cache(tmp_path)
    with pages.collect() as keys:
        pages.store(RANGE, PARAMS, b"a")
    other = RANGE.replace("AAPL", "MSFT")
    pages.store(other, PARAMS, b"b")
    assert pages.forget(keys) == 1
    assert pages.load(RANGE, PARAMS) is None
    assert pages.load(other, PARAMS) == b"b"


def test_a_damaged_page_is_a_miss(tmp_path: Path):
    pages = cache(tmp_path)
    pages.store(RANGE, PARAMS, b"{}")
    (file,) = (tmp_path / "cache").rglob("*.page")
    file.write_bytes(b"not zlib")
    assert pages.load(RANGE, PARAMS) is None


def test_the_resource_reuses_cached_pages_until_they_are_forgotten(
    sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    window = CandleWindow(dt.date(2024, 1, 2), dt.date(2024, 3, 28))
    symbols = parse_symbols(["AAPL", "MSFT", "IBM"], "stock")
    directory = tmp_path / "pages"

    def polygon():
        return make_polygon(sim, cache_dir=str(directory), fresh_after="2024-06-30")

    first = fetch_candles(polygon(), AssetClass.STOCK, symbols, window, force_strategy="range")
    assert sim.stats()["requests"] == 3
    assert len(first.cache_keys) == 3
    sim.reset()
    with caplog.at_level(logging.INFO):
        again = fetch_candles(polygon(), AssetClass.STOCK, symbols, window, force_strategy="range")
    assert sim.stats()["requests"] == 0, "every page came from the cache"
    assert again.requests["pages_reused"] == 3
    assert f"reused 3 cached pages (3 requests saved) from {directory}" in caplog.text
    assert (
        again.frame.drop("fetched_at")
        .sort("symbol", "day")
        .equals(first.frame.drop("fetched_at").sort("symbol", "day"))
    )
    resource = polygon()
    grouped = fetch_candles(resource, AssetClass.STOCK, symbols, window, force_strategy="grouped")
    assert sim.stats()["requests"] == len(grouped.plan.days), "grouped pages are other requests"
    resource.forget_pages(grouped.cache_keys)
    resource.forget_pages(first.cache_keys)
    assert not list(directory.rglob("*.page"))
    # The revision window: reused minutes later (a kill's rerun), asked again after an hour.
    sim.reset()
    recent = CandleWindow(dt.date(2024, 6, 3), dt.date(2024, 7, 2))
    for _ in range(2):
        fetch_candles(polygon(), AssetClass.STOCK, symbols, recent, force_strategy="range")
    assert sim.stats()["requests"] == 3
    age(directory, 61 * 60)
    fetch_candles(polygon(), AssetClass.STOCK, symbols, recent, force_strategy="range")
    assert sim.stats()["requests"] == 6


def test_a_failed_symbol_keeps_no_page(sim, tmp_path: Path):
    window = CandleWindow(dt.date(2024, 1, 2), dt.date(2024, 3, 28))
    directory = tmp_path / "pages"
    # MSFT's pages parse and are stored, then its pagination loops and the symbol fails: the
    # pages that led there must not be reused by a rerun.
    sim.add_fault({"kind": "next_url_loop", "ticker": "MSFT"})
    polygon = make_polygon(sim, cache_dir=str(directory), fresh_after="2024-06-30")
    result = fetch_candles(
        polygon,
        AssetClass.STOCK,
        parse_symbols(["AAPL", "MSFT"], "stock"),
        window,
        force_strategy="range",
    )
    assert set(result.errors) == {"MSFT"}
    assert len(list(directory.rglob("*.page"))) == 1
    assert len(result.cache_keys) == 1


def test_pages_stay_until_the_write_commits(sim, database, tmp_path: Path):
    directory = tmp_path / "pages"
    polygon = make_polygon(sim, cache_dir=str(directory), fresh_after="2024-06-30")
    unreachable = PostgresDatabase(url="postgresql://nobody@127.0.0.1:9/nowhere")
    symbols = {"stock_daily_candles": ["AAPL", "MSFT"]}
    run = dict(assets=[stock_daily_candles], symbols=symbols, config=RANGE_PLAN)
    failed = materialise(
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 12),
        {
            "polygon": polygon,
            "database": database,
            "candle_io_manager": PostgresCandleIOManager(database=unreachable),
        },
        **run,
    )
    assert not failed.success
    assert len(list(directory.rglob("*.page"))) == 2, "the write failed: pages kept for a rerun"
    sim.reset()
    resources = {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }
    assert materialise(dt.date(2024, 1, 2), dt.date(2024, 1, 12), resources, **run).success
    assert sim.stats()["requests"] == 0, "the rerun read both pages from disk"
    assert not list(directory.rglob("*.page")), "committed: pages removed"


def test_a_failed_grouped_day_keeps_the_other_days_for_the_rerun(sim, database, tmp_path: Path):
    directory = tmp_path / "pages"
    polygon = make_polygon(sim, cache_dir=str(directory), fresh_after="2024-06-30")
    resources = {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }
    run = dict(
        assets=[stock_daily_candles],
        symbols={"stock_daily_candles": ["AAPL", "MSFT"]},
        config={"stock_daily_candles": {"strategy": "grouped", "rows_per_chunk": 6}},
    )
    # 2024-01-02..12 has 9 sessions, fetched 3 at a time; the last chunk's 2024-01-12 fails.
    sim.add_fault(kind="status", status_code=503, match_path="2024-01-12")
    failed = materialise(dt.date(2024, 1, 2), dt.date(2024, 1, 12), resources, **run)
    assert not failed.success  # every symbol failed: the run says so, nothing written
    assert read_table_rows(database) == 0
    assert len(list(directory.rglob("*.page"))) == 8, "the days that arrived are kept"
    sim.reset()
    assert materialise(dt.date(2024, 1, 2), dt.date(2024, 1, 12), resources, **run).success
    assert [e["path"].rsplit("/", 1)[-1] for e in sim.stats()["log"]] == ["2024-01-12"]
    assert read_table_rows(database) == 18
    assert not list(directory.rglob("*.page"))


def read_table_rows(database: PostgresDatabase) -> int:
    with database.connect() as conn:
        return conn.execute("SELECT count(*) FROM marketdata.stock_daily_candles").fetchone()[0]
