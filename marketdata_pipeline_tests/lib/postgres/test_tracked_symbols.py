"""Requesting a symbol's history again: the sensor sees it as new, under a new run key."""

from __future__ import annotations

import dagster as dg
import psycopg

from marketdata_pipeline.defs.symbols.sensors import read_cursor
from marketdata_pipeline.lib.postgres.tracked_symbols import (
    add_symbols,
    changes_since,
    remove_symbols,
    request_history_again,
)
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from marketdata_pipeline_tests.helpers import tracked_symbols_sensor


def test_request_history_again_makes_the_sensor_request_it_under_a_new_run_key(
    database, database_url
):
    aapl, msft = Symbol("AAPL", AssetClass.STOCK), Symbol("MSFT", AssetClass.STOCK)
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, [aapl, msft])
    with dg.instance_for_test() as instance:

        def tick(cursor: str | None):
            context = dg.build_sensor_context(
                instance=instance, cursor=cursor, resources={"database": database}
            )
            return tracked_symbols_sensor(context)

        first = tick(None)
        (request,) = first.run_requests
        assert isinstance(tick(first.cursor), dg.SkipReason)  # nothing new

        # The history run was interrupted; MSFT was removed meanwhile.
        with psycopg.connect(database_url) as conn:
            remove_symbols(conn, [msft])
            assert request_history_again(conn, AssetClass.STOCK, ["AAPL", "MSFT"]) == 1
            assert changes_since(conn, read_cursor(first.cursor)[0])[0] == [("AAPL", "stock")]
        second = tick(first.cursor)
        (again,) = second.run_requests
    assert again.run_key != request.run_key
    assert again.run_config["ops"]["stock_daily_candles"]["config"]["symbols"] == ["AAPL"]
    assert read_cursor(second.cursor)[0] > read_cursor(first.cursor)[0]


def test_request_history_again_with_no_symbols_changes_nothing(database_url):
    with psycopg.connect(database_url) as conn:
        assert request_history_again(conn, AssetClass.CRYPTO, []) == 0
