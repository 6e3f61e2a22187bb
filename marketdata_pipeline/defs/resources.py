"""The resources every definition shares, built from `Settings` at the edge.

Secrets go through `dg.EnvVar`, which Dagster resolves at launch and never shows in the UI
(`os.getenv` values would be visible): the API key always, the database URL when one is set.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import dagster as dg

from marketdata_pipeline.defs.candles.schedules import revision_window
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.settings import EARLIEST_START_DATE, Settings


def fresh_after(settings: Settings, now: dt.datetime | None = None) -> str | None:
    """The last day whose pages the page cache keeps for its full age: the day before the
    revision window (the trailing sessions the vendor may still revise), as an ISO date. Pages
    reaching past it are reused for the short recent age only.

    Computed when the definitions load; a long-lived code server's value only gets older,
    which caches less, never more.
    """
    window = revision_window(
        now or dt.datetime.now(dt.UTC), settings.revision_sessions, EARLIEST_START_DATE
    )
    if window is None:
        return None
    return (window.first - dt.timedelta(days=1)).isoformat()


def build_resources(settings: Settings) -> dict[str, Any]:
    """`polygon`, `database` and `candle_io_manager` for `settings`."""
    database = (
        PostgresDatabase(url=dg.EnvVar("MARKETDATA_DATABASE_URL"))
        if settings.database_url
        else PostgresDatabase(embedded_home=str(settings.home))
    )
    # Without a key variable the settings carry the local simulator's public key (the command
    # line starts the simulator then); a real key only ever travels as an EnvVar reference.
    api_key: Any = (
        dg.EnvVar(settings.api_key_variable)
        if settings.api_key_variable
        else settings.api_key_value()
    )
    polygon = PolygonResource(
        api_key=api_key or "",
        base_url=settings.base_url,
        requests_per_minute=settings.requests_per_minute,
        # The budget is shared through the candle store by every process using the key.
        database=database,
        source="simulator" if settings.simulated else "polygon",
        history_start=settings.history_start.isoformat() if settings.history_start else None,
        cache_dir=str(settings.cache_dir),
        cache_max_age_days=settings.cache_max_age_days,
        cache_recent_max_age_minutes=settings.cache_recent_max_age_minutes,
        cache_scope=settings.cache_scope,
        cache_max_mb=settings.cache_max_mb,
        spool_dir=str(settings.spool_dir),
        fresh_after=fresh_after(settings),
    )
    return {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }
