"""End to end: the deployment of docs/deployment.md, driven as a user drives it.

The code server, webserver and daemon run as separate processes on Postgres instance storage
(see conftest.py). The test launches a partition-range backfill through the webserver's GraphQL
API (the mutation the UI sends), tracks new symbols with `marketdata symbols add` and lets the
daemon's `tracked_symbols_sensor` backfill their history, then checks the rows in Postgres, the
asset check results Dagster recorded, and each symbol's status in `marketdata.tracked_symbols`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import pytest

from marketdata_pipeline.defs.candles.checks import BLOCKING, candle_check_specs
from marketdata_pipeline.lib.calendar import crypto_days, last_complete_day, stock_sessions
from marketdata_pipeline_tests.e2e.conftest import SEEDED_STOCKS, Deployment

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

LAUNCH_BACKFILL = """
mutation LaunchBackfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}"""

BACKFILL = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      numPartitions
      error { message }
      runs { runId status tags { key value } }
    }
    ... on Error { message }
  }
}"""

RUNS_BY_TAG = """
query Runs($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on Error { message }
  }
}"""

# A single-run range records one evaluation for the whole run, without a partition; the
# per-partition rows Dagster plans alongside it stay SKIPPED. `partition: ""` selects the former.
CHECK_EXECUTIONS = """
query Checks($asset: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $asset, checkName: $check, partition: "", limit: 50) {
    runId
    status
    evaluation { success severity description }
  }
}"""

FINISHED_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
FINISHED_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
NEW_STOCK, NEW_CRYPTO = "NVDA", "X:BTCUSD"
BACKFILL_DAYS = 10  # the last ten NYSE sessions: stock partitions are sessions only


def _tags(run: dict[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _backfill(deployment: Deployment, backfill_id: str) -> dict[str, Any]:
    result = deployment.graphql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
    assert result["__typename"] == "PartitionBackfill", result
    return result


def _sensor_runs(deployment: Deployment) -> list[dict[str, Any]]:
    result = deployment.graphql(RUNS_BY_TAG, {"key": "marketdata/trigger", "value": "new-symbols"})
    assert result["runsOrError"]["__typename"] == "Runs", result
    return result["runsOrError"]["results"]


def _check_executions(deployment: Deployment, asset: str, run_id: str) -> dict[str, dict]:
    """check name -> its execution in `run_id`."""
    found = {}
    for spec in candle_check_specs(asset):
        executions = deployment.graphql(
            CHECK_EXECUTIONS, {"asset": {"path": [asset]}, "check": spec.name}
        )["assetCheckExecutions"]
        for execution in executions:
            if execution["runId"] == run_id:
                found[spec.name] = execution
    return found


def _assert_checks_passed(deployment: Deployment, asset: str, run_id: str) -> None:
    executions = _check_executions(deployment, asset, run_id)
    assert set(executions) == {s.name for s in candle_check_specs(asset)}, executions
    failed = {n: e for n, e in executions.items() if e["status"] != "SUCCEEDED"}
    # The simulator's data is clean: every check passes, the blocking ones above all.
    assert not failed, failed
    for name in BLOCKING:
        assert executions[name]["evaluation"]["severity"] == "ERROR"


def _row_counts(deployment: Deployment, table: str, start: dt.date, end: dt.date) -> dict:
    return dict(
        deployment.query(
            f"SELECT symbol, count(*) FROM marketdata.{table}"
            " WHERE day BETWEEN %s AND %s GROUP BY symbol",
            (start, end),
        )
    )


def test_ui_backfill_and_symbol_sensor_on_separate_processes(deployment: Deployment) -> None:
    started = time.monotonic()
    end = last_complete_day()
    recent = stock_sessions(end - dt.timedelta(days=3 * BACKFILL_DAYS), end)[-BACKFILL_DAYS:]
    start, last_session = recent[0], recent[-1]

    # 1. A partition-range backfill through the webserver, with the parameters the UI's
    #    Materialize dialog sends for a range of partitions of one asset.
    partitions = [str(day) for day in recent]
    launched = deployment.graphql(
        LAUNCH_BACKFILL,
        {
            "params": {
                "assetSelection": [{"path": ["stock_daily_candles"]}],
                "partitionNames": partitions,
                "fromFailure": False,
                "title": "e2e backfill",
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    # 2. Meanwhile a user tracks new symbols; the daemon's sensor backfills their history.
    added = deployment.marketdata("symbols", "add", NEW_STOCK, NEW_CRYPTO)
    assert added.returncode == 0, added.stderr
    assert "NVDA (stock): added" in added.stdout and "BTCUSD (crypto): added" in added.stdout

    backfill = deployment.wait_for(
        f"backfill {backfill_id} to finish",
        lambda: (b := _backfill(deployment, backfill_id))["status"] in FINISHED_BACKFILL and b,
        timeout=150,
        interval=2,
    )
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    assert backfill["numPartitions"] == BACKFILL_DAYS
    # BackfillPolicy.single_run(): the whole range is one run.
    [backfill_run] = backfill["runs"]
    assert backfill_run["status"] == "SUCCESS"
    assert _tags(backfill_run)["dagster/asset_partition_range_start"] == str(start)
    assert _tags(backfill_run)["dagster/asset_partition_range_end"] == str(last_session)

    everyone = {*SEEDED_STOCKS, "NVDA", "BTCUSD"}

    def sensor_runs_done() -> list[dict[str, Any]] | None:
        runs = _sensor_runs(deployment)
        covered = {s for r in runs for s in _tags(r)["marketdata/symbols"].split(",")}
        if covered >= everyone and all(r["status"] in FINISHED_RUN for r in runs):
            return runs
        return None

    # The seeded symbols were new to the sensor too, so it backfills them as well.
    sensor_runs = deployment.wait_for(
        "the tracked_symbols_sensor's history runs", sensor_runs_done, timeout=150, interval=2
    )
    assert all(r["status"] == "SUCCESS" for r in sensor_runs), sensor_runs
    # One run per asset class, each over its partitions: the sessions of the history for the
    # stocks, every day for crypto.
    history_sessions = stock_sessions(deployment.start_date, end)
    for run in sensor_runs:
        tags = _tags(run)
        crypto = "BTCUSD" in tags["marketdata/symbols"]
        first, last = (
            (deployment.start_date, end) if crypto else (history_sessions[0], last_session)
        )
        assert tags["dagster/asset_partition_range_start"] == str(first)
        assert tags["dagster/asset_partition_range_end"] == str(last)

    # 3. What landed: rows in Postgres, check results in Dagster, status per symbol.
    sessions = stock_sessions(start, end)
    stock_counts = _row_counts(deployment, "stock_daily_candles", start, end)
    assert stock_counts == {s: len(sessions) for s in (*SEEDED_STOCKS, "NVDA")}
    assert _row_counts(deployment, "stock_daily_candles", deployment.start_date, end)[
        "NVDA"
    ] == len(history_sessions)
    days = crypto_days(deployment.start_date, end)
    assert _row_counts(deployment, "crypto_daily_candles", deployment.start_date, end) == {
        "BTCUSD": len(days)
    }
    [(fractional,)] = deployment.query(
        "SELECT count(*) FROM marketdata.crypto_daily_candles WHERE volume <> floor(volume)"
    )
    assert fractional > 0, "crypto volume should be fractional"
    assert deployment.query("SELECT count(*) FROM marketdata.rejected_candles") == [(0,)]

    _assert_checks_passed(deployment, "stock_daily_candles", backfill_run["runId"])
    crypto_run = next(r for r in sensor_runs if "BTCUSD" in _tags(r)["marketdata/symbols"])
    _assert_checks_passed(deployment, "crypto_daily_candles", crypto_run["runId"])

    status = {
        (symbol, cls): (state, last_day, error)
        for symbol, cls, state, last_day, error in deployment.query(
            "SELECT symbol, asset_class, status, last_success_day, last_error"
            " FROM marketdata.tracked_symbols WHERE active"
        )
    }
    assert status == {
        **{(s, "stock"): ("ok", last_session, None) for s in (*SEEDED_STOCKS, "NVDA")},
        ("BTCUSD", "crypto"): ("ok", end, None),
    }

    listed = json.loads(deployment.marketdata("symbols", "list", "--json").stdout)
    assert {(r["symbol"], r["asset_class"], r["status"]) for r in listed} == {
        (s, c, "ok") for s, c in status
    }

    # 4. The command line's backfill runs through the same instance: the UI lists its run.
    cli = deployment.marketdata(
        *("backfill", "--start", str(start), "--end", str(end)),
        *("--asset", "stock_daily_candles", "--symbols", "AAPL"),
        timeout=180,
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    runs = deployment.graphql(RUNS_BY_TAG, {"key": "marketdata/trigger", "value": "cli-backfill"})
    [cli_run] = runs["runsOrError"]["results"]
    assert cli_run["status"] == "SUCCESS"
    assert _tags(cli_run)["dagster/asset_partition_range_start"] == str(start)

    # 5. Removing a symbol keeps its history and stops fetching it.
    removed = deployment.marketdata("symbols", "remove", "MSFT")
    assert "MSFT (stock): removed" in removed.stdout, removed.stdout + removed.stderr
    assert deployment.query(
        "SELECT active FROM marketdata.tracked_symbols WHERE symbol = 'MSFT'"
    ) == [(False,)]
    assert _row_counts(deployment, "stock_daily_candles", start, end)["MSFT"] == len(sessions)
    print(f"e2e: backfills, sensor, checks and CLI verified in {time.monotonic() - started:.0f} s")


TERMINATE_RUN = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId, terminatePolicy: SAFE_TERMINATE) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""

RUNS_IN_FLIGHT = """
query InFlight {
  runsOrError(filter: {statuses: [QUEUED, NOT_STARTED, STARTING, STARTED, CANCELING]}) {
    ... on Runs { results { runId } }
  }
}"""

#: Seconds the API takes to answer the terminated run's request.
DELAY = 15

MATERIALIZATIONS = """
query Materializations($asset: AssetKeyInput!) {
  assetOrError(assetKey: $asset) {
    ... on Asset { assetMaterializations(limit: 100) { runId } }
  }
}"""


def test_terminate_from_the_ui_stops_the_run_in_flight_and_writes_nothing(
    deployment: Deployment,
) -> None:
    # The steps run in the run worker's process (the code location's in-process executor): the
    # UI's Terminate interrupts the step waiting on the API, which lets its request in flight
    # end (the delay, shorter than the client's timeout) and writes nothing. Not terminated,
    # the run would succeed once the answer comes.
    # Alone, this test starts with the sensor's history runs: their rows are not this run's.
    def history_landed() -> bool:
        runs = _sensor_runs(deployment)
        covered = {s for r in runs for s in _tags(r)["marketdata/symbols"].split(",")}
        in_flight = deployment.graphql(RUNS_IN_FLIGHT)["runsOrError"]["results"]
        return covered >= set(SEEDED_STOCKS) and not in_flight

    deployment.wait_for("the seeded symbols' history", history_landed, timeout=150, interval=2)
    day = stock_sessions(deployment.start_date, last_complete_day())[-1]
    rows_before = _row_counts(deployment, "stock_daily_candles", day, day)
    # Only this run's request: the grouped day (the sensor's history runs use ranges).
    hang = deployment.sim.add_fault(kind="delay", seconds=DELAY, endpoint="grouped", times=1)
    try:
        launched = deployment.graphql(
            LAUNCH_BACKFILL,
            {
                "params": {
                    "assetSelection": [{"path": ["stock_daily_candles"]}],
                    "partitionNames": [str(day)],
                    "fromFailure": False,
                    "title": "e2e terminate",
                }
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched

        def waiting_on_the_api() -> dict[str, Any] | None:
            runs = deployment.graphql(
                RUNS_BY_TAG, {"key": "dagster/backfill", "value": launched["backfillId"]}
            )["runsOrError"]["results"]
            fired = next(f for f in deployment.sim.state.faults() if f["id"] == hang)["fired"]
            return runs[0] if runs and runs[0]["status"] == "STARTED" and fired else None

        run = deployment.wait_for("the run waiting on the API", waiting_on_the_api, timeout=90)
        terminated = deployment.graphql(TERMINATE_RUN, {"runId": run["runId"]})["terminateRun"]
        assert terminated["__typename"] == "TerminateRunSuccess", terminated

        def ended() -> str | None:
            runs = deployment.graphql(
                RUNS_BY_TAG, {"key": "dagster/backfill", "value": launched["backfillId"]}
            )["runsOrError"]["results"]
            return runs[0]["status"] if runs[0]["status"] in FINISHED_RUN else None

        assert deployment.wait_for("the run to end", ended, timeout=DELAY + 40) == "CANCELED"
    finally:
        deployment.sim.state.remove_fault(hang)
    assert _row_counts(deployment, "stock_daily_candles", day, day) == rows_before
    materialized = deployment.graphql(
        MATERIALIZATIONS, {"asset": {"path": ["stock_daily_candles"]}}
    )
    runs = {m["runId"] for m in materialized["assetOrError"]["assetMaterializations"]}
    assert run["runId"] not in runs
