"""The generated NYSE closure table is exactly what exchange-calendars computes today."""

from __future__ import annotations

import datetime as dt

from marketdata_pipeline.lib import calendar
from marketdata_pipeline.lib.nyse_closures import (
    WEEKDAY_CLOSURES,
    closures_from_exchange_calendars,
)
from polygon_simulator.calendar import stock_sessions as simulator_sessions


def test_the_table_equals_exchange_calendars():
    expected = closures_from_exchange_calendars()
    missing = sorted(set(expected) - WEEKDAY_CLOSURES)
    extra = sorted(WEEKDAY_CLOSURES - set(expected))
    assert not missing and not extra, (
        f"the NYSE table is stale (missing {missing}, extra {extra}): "
        "run `python -m marketdata_pipeline.lib.nyse_closures`"
    )


def test_sessions_know_the_ad_hoc_closures_and_agree_with_the_simulator():
    for closed in (dt.date(2001, 9, 11), dt.date(2012, 10, 29), dt.date(2025, 1, 9)):
        assert not calendar.is_stock_session(closed)
    assert calendar.is_stock_session(dt.date(2024, 3, 4))
    start, end = dt.date(2001, 9, 1), dt.date(2001, 9, 30)
    assert calendar.stock_sessions(start, end) == simulator_sessions(start, end)
    assert dt.date(2001, 9, 17) in calendar.stock_sessions(start, end)  # reopened on Monday
    assert calendar.weekday_closures(start, end) == [
        dt.date(2001, 9, 3),  # Labor Day
        dt.date(2001, 9, 11),
        dt.date(2001, 9, 12),
        dt.date(2001, 9, 13),
        dt.date(2001, 9, 14),
    ]
