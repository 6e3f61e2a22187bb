"""A tracking rule added gets its history: the tracked-symbols sensor requests one stock run
of exactly the tickers the rule expands to (run config `rules`), and that run stores them."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from marketdata_pipeline.defs.symbols.sensors import read_cursor
from marketdata_pipeline.lib.postgres.universe import add_rule, rule_tickers
from marketdata_pipeline_tests.defs.reference.test_identity import world  # noqa: F401 - fixture
from marketdata_pipeline_tests.helpers import (
    materialise,
    query,
    stock_daily_candles,
    tracked_symbols_sensor,
)

D = dt.date
pytestmark = pytest.mark.usefixtures("world")


def tick(instance: dg.DagsterInstance, database, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"database": database}
    )
    return tracked_symbols_sensor(context)


def test_a_new_rule_gets_one_history_run_of_its_tickers(resources, database, database_url):
    with dg.instance_for_test() as instance:
        first = tick(instance, database, None)
        assert isinstance(first, dg.SkipReason)  # nothing tracked, no rule
        with psycopg.connect(database_url) as conn:
            rule, _ = add_rule(conn, "stocks", ["CS"], include_delisted=False)
        result = tick(instance, database, None)
        (request,) = result.run_requests
        assert request.job_name == "stock_candles_job"
        config = request.run_config["ops"]["stock_daily_candles"]["config"]
        assert config == {"rules": [rule.rule_id]}
        assert request.tags["marketdata/symbols"] == f"rules {rule.rule_id}"
        # The cursor moved past the rule: the next tick asks for nothing; a re-activated or
        # another rule is requested again.
        assert isinstance(tick(instance, database, result.cursor), dg.SkipReason)
        assert read_cursor(result.cursor)[1] > 0
        # An earlier cursor (a bare number) is still read, as the symbols' sequence.
        assert read_cursor("7") == (7, 0)

    # What the request runs: the candles of the rule's tickers (the run loads the ticker
    # reference first), over a window of the history.
    window = (D(2024, 6, 3), D(2024, 6, 14))
    run = materialise(*window, resources, assets=[stock_daily_candles], config={
        "stock_daily_candles": {"rules": [rule.rule_id]}})  # fmt: skip
    assert run.success
    stored = {t for (t,) in query(database_url, "SELECT DISTINCT symbol FROM "
                                  "marketdata.stock_daily_candles")}  # fmt: skip
    with psycopg.connect(database_url) as conn:
        expected = rule_tickers(conn, *window, [rule])
    assert stored and stored == expected
    assert "FB" in stored and "META" in stored  # both tickers of the renamed company (CS)
    assert not query(database_url, "SELECT 1 FROM marketdata.tracked_symbols")
