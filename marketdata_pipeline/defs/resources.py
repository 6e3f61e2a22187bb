"""The resources every definition shares, configured from the environment.

Secrets go through `dg.EnvVar`, which Dagster resolves at launch and never shows in the UI
(`os.getenv` values would be visible): the API key always, the database URL when one is set.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.postgres.database import PostgresDatabase
from marketdata_pipeline.lib.postgres.io_manager import PostgresCandleIOManager
from marketdata_pipeline.lib.settings import load_settings


def build_resources() -> dict[str, Any]:
    """`polygon`, `database` and `candle_io_manager` from the validated environment."""
    settings = load_settings()
    database = (
        PostgresDatabase(url=dg.EnvVar("MARKETDATA_DATABASE_URL"))
        if settings.database_url
        else PostgresDatabase()
    )
    # Base URL, budget and the budget's database are read from the environment when a run
    # starts (see PolygonResource), so they are not pinned at code-load time.
    polygon = PolygonResource(api_key=dg.EnvVar(settings.api_key_variable or "POLYGON_API_KEY"))
    return {
        "polygon": polygon,
        "database": database,
        "candle_io_manager": PostgresCandleIOManager(database=database),
    }
