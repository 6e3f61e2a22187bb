"""Every benchmark still runs, at tiny sizes, against the suite's Postgres and simulator.

No timing is asserted here (the machine's load decides timings): only that each benchmark
completes and reports the figures it promises, and that the request counts, which are exact,
equal the planner's minimum.
"""

from __future__ import annotations

import math

import pytest

from bench import (
    backfill_overhead,
    daily_update,
    fixed_cost,
    ingest,
    market_scale,
    memory,
    normalise,
    paid_tier,
    partition_metadata,
    partition_overhead,
    reading,
    reference_daily,
    reference_maintenance,
    requests,
    resume,
    returns_refresh,
    scale,
    sensor_tick,
)
from bench.common import BenchPostgres, Figure


@pytest.fixture(scope="module")
def bench_pg(pg_server) -> BenchPostgres:
    """The suite's Postgres server, as the benchmarks take it."""
    return BenchPostgres(pg_server)


def _names(figures: list[Figure]) -> set[str]:
    for figure in figures:
        assert math.isfinite(figure.value), figure.line()
        assert figure.line().startswith(f"{figure.name}: ")
    return {f.name for f in figures}


def test_ingest_compares_io_manager_with_bare_copy_and_executemany(bench_pg):
    figures = ingest.run(pg=bench_pg, **ingest.SMOKE)
    assert {
        "ingest.bare_copy",
        "ingest.io_manager",
        "ingest.executemany_psycopg3",
        "ingest.executemany_psycopg2",
    } <= _names(figures)


def test_normalise_reports_speed_and_memory():
    figures = normalise.run(**normalise.SMOKE)
    names = _names(figures)
    assert {"normalise.parse_normalise", "normalise.peak_extra_memory"} <= names


def test_request_counts_equal_the_planners_minimum(sim):
    figures = requests.run(sim=sim, **requests.SMOKE)
    made = [f for f in figures if f.name.endswith(".made")]
    assert len(made) == 2
    assert all(f.met for f in made), [f.line() for f in made]


def test_paid_tier_compares_with_the_official_client(sim):
    figures = paid_tier.run(sim=sim, **paid_tier.SMOKE)
    assert {
        "paid_tier.official_client",
        "paid_tier.ours_auto",
        "paid_tier.ours_range",
    } <= _names(figures)


def test_backfill_overhead_single_run_against_per_partition_runs(bench_pg, sim):
    figures = backfill_overhead.run(pg=bench_pg, sim=sim, **backfill_overhead.SMOKE)
    assert {"backfill.single_run", "backfill.per_partition_runs"} <= _names(figures)


def test_scale_reports_wall_time_and_peak_rss_of_a_child_run(bench_pg, sim):
    figures = scale.run(pg=bench_pg, sim=sim, **scale.SMOKE)
    by_name = {f.name: f for f in figures}
    assert by_name["scale.peak_rss"].value > 0
    assert "15 rows" in (by_name["scale.run"].note or "")


def test_partition_overhead_compares_the_event_log_setups(bench_pg, sim):
    figures = partition_overhead.run(pg=bench_pg, sim=sim, **partition_overhead.SMOKE)
    assert {
        "partition_overhead.stock_unbatched",
        "partition_overhead.stock_batched",
        "partition_overhead.pooled_batched",
    } <= _names(figures)


def test_partition_metadata_compares_dagsters_method_with_ours():
    figures = partition_metadata.run(**partition_metadata.SMOKE)
    assert {
        "partition_metadata.dagster_10x",
        "partition_metadata.ours_10x",
        "partition_metadata.ours_growth",
    } <= _names(figures)


def test_memory_reports_peak_rss_at_1x_and_10x(bench_pg, sim):
    figures = memory.run(pg=bench_pg, sim=sim, **memory.SMOKE)
    assert {
        "memory.peak_rss_1x",
        "memory.peak_rss_10x",
        "memory.peak_rss_10x_one_chunk",
        "memory.peak_rss_stock_path_1x",
        "memory.peak_rss_stock_path_10x",
        "memory.peak_rss_stock_path_10x_check_in_one_read",
    } <= _names(figures)


def test_market_scale_compares_a_grouped_backfill_with_bare_copy(bench_pg, sim):
    figures = market_scale.run(pg=bench_pg, sim=sim, **market_scale.SMOKE)
    by_name = {f.name: f for f in figures}
    assert {
        "market_scale.1x.run",
        "market_scale.10x.run",
        "market_scale.10x.peak_rss",
        "market_scale.10x.overhead_per_partition",
        "market_scale.bare_copy",
        "market_scale.e2e_vs_bare_copy",
        "market_scale.10x_warm.run",
        "market_scale.e2e_vs_bare_copy_warm",
    } <= _names(figures)
    # Request counts are exact: the grouped plan, one request per session, nothing more.
    for case in ("1x", "10x", "10x_warm"):
        made = by_name[f"market_scale.{case}.requests"]
        assert made.value > 0 and made.ratio == 1.0, made.line()
    # Cold: the simulator built all 13 pages during the run; warm: it served all 13 pre-built.
    assert "from its cache 0, built 13 " in by_name["market_scale.e2e_vs_bare_copy"].note
    assert "from its cache 13, built 0 " in by_name["market_scale.e2e_vs_bare_copy_warm"].note
    # 20 stocks x 13 sessions in 2024-01-12..2024-01-31, all stored and all copied.
    assert "(260 rows)" in (by_name["market_scale.10x.run"].note or "")
    assert "260 rows into" in (by_name["market_scale.bare_copy"].note or "")


def test_resume_counts_the_requests_of_a_killed_run_and_its_rerun(bench_pg, sim):
    figures = resume.run(pg=bench_pg, sim=sim, **resume.SMOKE)
    by_name = {f.name: f for f in figures}
    assert {"resume.killed_run", "resume.rerun", "resume.requests_vs_plan"} <= _names(figures)
    # The smoke plan (13 sessions) fits in the workers at once: every request of the killed
    # run was sent, the rerun pays only for the pages it did not keep, all 260 rows land.
    assert by_name["resume.rerun"].value < by_name["resume.requests_vs_plan"].value
    assert "260 rows stored" in (by_name["resume.rerun"].note or "")
    assert "0 pages left" in (by_name["resume.rerun"].note or "")


def test_the_simulators_grouped_endpoint_carries_a_whole_market(sim):
    # market_scale asks the grouped endpoint for 10,000 stock tickers a day, as the real market.
    import httpx

    sim.configure(stock_universe_size=market_scale.FULL["universe"])
    body = (
        httpx.get(
            f"{sim.base_url}/v2/aggs/grouped/locale/us/market/stocks/2024-06-03",
            params={"apiKey": sim.api_key, "adjusted": "true"},
            timeout=60,
        )
        .raise_for_status()
        .json()
    )
    tickers = {bar["T"] for bar in body["results"]}
    assert len(tickers) == body["resultsCount"] >= 10_000


def test_sensor_tick_times_the_daemons_tick_in_each_setup(bench_pg):
    figures = sensor_tick.run(pg=bench_pg, **sensor_tick.SMOKE)
    assert {
        "sensor_tick.stock_unbatched",
        "sensor_tick.repository",
        "sensor_tick.repository_batched",
    } == _names(figures)
    # Each tick created the history run: ten days of the candle asset and its adjustments.
    assert all("10 daily partitions" in (f.note or "") for f in figures)


def test_reference_daily_second_run_of_the_day_pays_only_its_candle_plan(bench_pg, sim):
    figures = reference_daily.run(pg=bench_pg, sim=sim, **reference_daily.SMOKE)
    by_name = {f.name: f for f in figures}
    for label, *_ in reference_daily.SMOKE_CASES:
        assert by_name[f"reference_daily.{label}.first_run_beyond_plan"].value > 0
        assert by_name[f"reference_daily.{label}.second_run_beyond_plan"].met
        assert by_name[f"reference_daily.{label}.summary_vs_simulator"].met


def test_reference_maintenance_counts_a_few_requests_a_day_and_lands_every_change(bench_pg, sim):
    figures = reference_maintenance.run(pg=bench_pg, sim=sim, **reference_maintenance.SMOKE)
    by_name = {f.name: f for f in figures}
    # Listed (3 pages) and delisted (1) in full, and the details of the two tracked tickers
    # the list lacks (once); then each day: listed and delisted newest first, one
    # reconciliation page and the renamed company's events.
    assert by_name["reference_maintenance.first_load"].value == 4 + 2
    assert by_name["reference_maintenance.unlisted_identity"].met
    # Hand-typed tickers without a rule: their identity on the first day, nothing after.
    assert by_name["reference_maintenance.hand_typed_first_day"].met
    assert by_name["reference_maintenance.hand_typed_later_days"].value == 0
    assert by_name["reference_maintenance.daily_max"].value == 4
    assert by_name["reference_maintenance.no_change_day"].value == 3
    assert by_name["reference_maintenance.changes_landed"].met


def test_reading_compares_the_reader_with_psql_copy_and_reports_the_goals(bench_pg):
    figures = reading.run(pg=bench_pg, **reading.SMOKE)
    assert {
        "reading.bytes_per_bar",
        "reading.psql_copy_csv",
        "reading.reader_candles",
        "reading.cross_section_pages_per_row",
        "reading.returns_day",
        "reading.export_parquet",
    } <= _names(figures)


def test_returns_refresh_times_the_stored_returns_and_the_split_check_against_the_view(
    bench_pg,
):
    figures = returns_refresh.run(pg=bench_pg, **returns_refresh.SMOKE)
    by_name = {f.name: f for f in figures}
    assert {
        "returns_refresh.anchor_view_ctas",
        "returns_refresh.backfill",
        "returns_refresh.rewrite",
        "returns_refresh.daily",
        "returns_refresh.split_check",
        "returns_refresh.candle_copy",
    } <= set(by_name)
    # Every bar but each symbol's first has its return, in both full refreshes.
    bars = by_name["returns_refresh.bars"].value
    symbols = returns_refresh.SMOKE["symbols"]
    assert f"{bars - symbols:,} rows written" in by_name["returns_refresh.backfill"].note
    assert f"{bars - symbols:,} replaced" in by_name["returns_refresh.rewrite"].note


def test_fixed_cost_times_the_commands_against_import_dagster(bench_pg, sim):
    figures = fixed_cost.run(pg=bench_pg, sim=sim, **fixed_cost.SMOKE)
    assert {
        "fixed_cost.import_dagster",
        "fixed_cost.backfill_one_day",
        "fixed_cost.run_floor",
        "fixed_cost.symbols_list",
    } <= _names(figures)
    floor = next(f for f in figures if f.name == "fixed_cost.run_floor")
    assert floor.anchor == "import dagster" and floor.ratio is not None


def test_daily_update_times_a_day_into_a_large_and_an_empty_store(bench_pg):
    figures = daily_update.run(pg=bench_pg, **daily_update.SMOKE)
    by_name = {f.name: f for f in figures}
    assert {
        "daily_update.write_empty",
        "daily_update.write_large",
        "daily_update.returns_empty",
        "daily_update.returns_large",
        "daily_update.count_scan_large",
    } <= set(by_name)
    assert by_name["daily_update.write_large"].ratio is not None
