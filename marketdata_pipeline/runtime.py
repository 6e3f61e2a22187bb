"""Process set-up shared by the command line and the make targets.

Resolves the candle-store database (starting the embedded server when no URL is configured),
prepares a Dagster home whose instance keeps runs and events on Postgres (dagster-postgres), and
exports the environment the Dagster processes read (`MARKETDATA_DATABASE_URL`,
`MARKETDATA_DAGSTER_STORAGE_URL`, `DAGSTER_HOME`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from marketdata_pipeline.lib.postgres.database import ensure_schema
from marketdata_pipeline.lib.postgres.embedded import ensure_embedded, sqlalchemy_url
from marketdata_pipeline.lib.settings import Settings, load_settings

#: The repository's instance configuration (copied into a default DAGSTER_HOME).
REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_TEMPLATE = REPO_ROOT / "dagster.yaml"
WORKSPACE_FILE = REPO_ROOT / "workspace.yaml"


@dataclass(frozen=True)
class Runtime:
    """What a command needs: validated settings, the database URLs, the Dagster home."""

    settings: Settings
    database_url: str
    dagster_storage_url: str
    dagster_home: Path


def prepare(*, with_dagster_home: bool = True) -> Runtime:
    """Resolve the database and Dagster home, export their variables, migrate the schema."""
    settings = load_settings()
    if settings.database_url:
        database_url = settings.database_url
        storage_url = os.environ.get("MARKETDATA_DAGSTER_STORAGE_URL") or sqlalchemy_url(
            database_url
        )
    else:
        urls = ensure_embedded(settings.home / "pgdata")
        database_url = urls["candles"]
        storage_url = os.environ.get("MARKETDATA_DAGSTER_STORAGE_URL") or urls["dagster"]
        os.environ["MARKETDATA_DATABASE_URL"] = database_url
    os.environ["MARKETDATA_DAGSTER_STORAGE_URL"] = storage_url
    ensure_schema(database_url)
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()
    if with_dagster_home:
        home.mkdir(parents=True, exist_ok=True)
        target = home / "dagster.yaml"
        # Keep our default home in sync with the repo's dagster.yaml; never overwrite the
        # instance file of a DAGSTER_HOME the user chose themselves.
        if not target.exists() or "DAGSTER_HOME" not in os.environ:
            shutil.copyfile(INSTANCE_TEMPLATE, target)
        os.environ["DAGSTER_HOME"] = str(home)
    return Runtime(load_settings(), database_url, storage_url, home)
