"""The recovery of interrupted history runs (`history_recovery_sensor`), on real parts.

The sensor is evaluated tick by tick as the daemon does (`evaluate_tick`, its own cursor) from
the code location's definitions, on an instance of the repository's `dagster.yaml` (runs and
events in Postgres): a history run of the tracked-symbols sensor marked failed from outside, as
`marketdata dev` and the next `marketdata` command mark runs whose process is gone, is requested
again, and the tracked-symbols sensor's next tick asks for its symbols under a new run key; a
history run whose step failed by itself (a 401 from the API) is not.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from marketdata_pipeline.defs.build import build_defs
from marketdata_pipeline.defs.symbols.recovery import MAX_RECOVERIES, interruption
from marketdata_pipeline.lib.calendar import last_complete_day
from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.run_triggers import HISTORY_TRIGGER, TRIGGER_TAG
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import parse_symbol

HISTORY_DAYS = 10


@pytest.fixture
def defs(database_url, sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    """The code location's definitions on the test's database, the simulator as the API, with
    a key the simulator refuses (401): a history run that gets to fetch fails by itself."""
    env = {
        "MARKETDATA_START_DATE": (
            last_complete_day() - dt.timedelta(days=HISTORY_DAYS - 1)
        ).isoformat(),
        "MARKETDATA_DATABASE_URL": database_url,
        "MARKETDATA_HOME": str(tmp_path / "home"),
        "POLYGON_BASE_URL": sim.base_url,
        "POLYGON_API_KEY": "not-the-simulators-key",
        "POLYGON_REQUESTS_PER_MINUTE": "6000",
    }
    # The jobs' resources read them (`dg.EnvVar`) when a run's plan is built, as in the daemon.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return build_defs(load_settings(env))


class Ticks:
    """A sensor of `defs` ticking as the daemon ticks it: each tick resumes from the cursor
    the previous one left."""

    def __init__(self, defs: dg.Definitions, name: str, instance, database) -> None:
        self.sensor = defs.resolve_sensor_def(name)
        self.instance, self.database = instance, database
        self.cursor: str | None = None

    def tick(self):
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"database": self.database}
        )
        result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result


def change_seqs(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(conn.execute("SELECT symbol, change_seq FROM marketdata.tracked_symbols"))


def history_run(defs: dg.Definitions, instance, request: dg.RunRequest) -> dg.DagsterRun:
    """The run the daemon creates for the tracked-symbols sensor's `request`."""
    return instance.create_run_for_job(
        defs.resolve_job_def(request.job_name),
        run_config=request.run_config,
        tags={**request.tags, "dagster/run_key": request.run_key},
        status=dg.DagsterRunStatus.STARTED,
    )


def requested_symbols(result) -> list[list[str]]:
    return [
        r.run_config["ops"]["stock_daily_candles"]["config"]["symbols"]
        for r in result.run_requests or ()
    ]


def test_a_history_run_marked_failed_from_outside_is_requested_again(
    defs, repository_instance, database, database_url
):
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL"), parse_symbol("MSFT")])
    tracked = Ticks(defs, "tracked_symbols_sensor", repository_instance, database)
    recovery = Ticks(defs, "history_recovery_sensor", repository_instance, database)
    assert recovery.tick().cursor is not None  # the first tick only sets its cursor
    (request,) = tracked.tick().run_requests
    run = history_run(defs, repository_instance, request)
    before = change_seqs(database_url)

    # What `marketdata dev` does to its runs in flight when it stops (and `marketdata backfill`
    # to the runs of a dead process): the run ends FAILURE with no step failed.
    repository_instance.report_run_failed(run, message="the server stopped under it")
    assert repository_instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    recovery.tick()

    after = change_seqs(database_url)
    assert after["AAPL"] > before["AAPL"] and after["MSFT"] > before["MSFT"]
    again = tracked.tick()
    assert requested_symbols(again) == [["AAPL", "MSFT"]]
    (new_request,) = again.run_requests
    assert new_request.run_key != request.run_key
    assert new_request.tags[TRIGGER_TAG] == HISTORY_TRIGGER
    # The failure is behind the recovery's cursor: a later tick requests nothing more.
    recovery.tick()
    assert change_seqs(database_url) == after


def test_a_history_interrupted_again_and_again_is_requested_again_three_times(
    defs, repository_instance, database, database_url
):
    """A worker killed on every attempt (for memory, say) must not loop for ever."""
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL")])
    tracked = Ticks(defs, "tracked_symbols_sensor", repository_instance, database)
    recovery = Ticks(defs, "history_recovery_sensor", repository_instance, database)
    recovery.tick()
    requested = []
    for _ in range(MAX_RECOVERIES + 1):
        result = tracked.tick()
        requested.append(requested_symbols(result))
        if not result.run_requests:
            break
        (request,) = result.run_requests
        run = history_run(defs, repository_instance, request)
        repository_instance.report_run_failed(run, message="its worker was killed")
        recovery.tick()
    # The first run and three recoveries; the fourth interruption is left failed.
    assert requested == [[["AAPL"]]] * (MAX_RECOVERIES + 1)
    assert requested_symbols(tracked.tick()) == []


def test_a_history_run_whose_step_failed_is_not_requested_again(
    defs, repository_instance, database, database_url
):
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [parse_symbol("AAPL")])
    tracked = Ticks(defs, "tracked_symbols_sensor", repository_instance, database)
    recovery = Ticks(defs, "history_recovery_sensor", repository_instance, database)
    recovery.tick()
    (request,) = tracked.tick().run_requests
    # The run itself, executed: its candle step meets a 401 and fails (STEP_FAILURE).
    result = defs.resolve_job_def(request.job_name).execute_in_process(
        run_config=request.run_config,
        instance=repository_instance,
        tags=request.tags,
        raise_on_error=False,
    )
    assert not result.success
    stored = repository_instance.get_run_by_id(result.run_id)
    assert stored.tags.get("dagster/failure_reason") == "STEP_FAILURE"
    before = change_seqs(database_url)

    recovery.tick()

    assert change_seqs(database_url) == before
    assert isinstance(tracked.tick().skip_message, str)  # nothing requested again


@pytest.mark.parametrize(
    ("reason", "steps", "message", "interrupted"),
    [
        ("UNEXPECTED_TERMINATION", [], None, True),
        ("RUN_WORKER_RESTART", [], None, True),
        ("START_TIMEOUT", [], None, True),
        (None, [], "marketdata dev stopped while this run was in flight", True),
        ("STEP_FAILURE", ["DagsterExecutionInterruptedError"], None, True),
        ("STEP_FAILURE", ["PolygonAuthError"], None, False),
        (None, ["PolygonAuthError"], None, False),
        ("RUN_EXCEPTION", [], None, False),
        ("JOB_INITIALIZATION_FAILURE", [], None, False),
        (None, [], "Exceeded maximum runtime of 3600 seconds.", False),
    ],
)
def test_which_failures_count_as_interruptions(reason, steps, message, interrupted):
    assert (interruption(reason, steps, message) is not None) is interrupted
