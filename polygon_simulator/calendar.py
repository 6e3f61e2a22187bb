"""The NYSE calendar the simulator serves stock bars on (exchange-calendars' XNYS).

The simulator keeps its own session logic rather than importing the pipeline's, so it can run
(and be tested) as an independent stand-in for the vendor's API; the exchange's closures are
data, read from the table generated from exchange-calendars (`nyse_closures.py`).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from marketdata_pipeline.lib.nyse_closures import FIRST_DAY, LAST_DAY, WEEKDAY_CLOSURES

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC
CALENDAR_FIRST_DAY = FIRST_DAY
CALENDAR_LAST_DAY = LAST_DAY


def stock_sessions(start: dt.date, end: dt.date) -> list[dt.date]:
    """NYSE sessions from `start` to `end`, both inclusive."""
    if end < start:
        return []
    if start < FIRST_DAY or end > LAST_DAY:
        raise ValueError(f"the NYSE calendar covers {FIRST_DAY}..{LAST_DAY}")
    days = (start + dt.timedelta(days=i) for i in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5 and d not in WEEKDAY_CLOSURES]
