"""The NYSE calendar the simulator serves stock bars on (exchange-calendars' XNYS).

The simulator keeps its own copy rather than importing the pipeline's, so it can run (and be
tested) as an independent stand-in for the vendor's API.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC

# exchange-calendars only builds 20 years back by default: ask for the whole span we serve.
CALENDAR_FIRST_DAY = dt.date(1990, 1, 2)
CALENDAR_LAST_DAY = dt.date(2035, 12, 31)


@lru_cache(maxsize=1)
def _xnys():
    import exchange_calendars as xcals

    return xcals.get_calendar(
        "XNYS", start=CALENDAR_FIRST_DAY.isoformat(), end=CALENDAR_LAST_DAY.isoformat()
    )


def stock_sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions from `start` to `end`, both inclusive."""
    if end < start:
        return []
    return [d.date() for d in _xnys().sessions_in_range(start.isoformat(), end.isoformat())]
