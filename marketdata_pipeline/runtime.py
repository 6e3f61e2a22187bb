"""Process set-up shared by the command line and the make targets (the edge).

Reads the settings once, resolves the candle-store database (starting the embedded server when no
URL is configured), prepares a Dagster home whose instance keeps runs and events on Postgres
(dagster-postgres), and, when no API key is set, starts the local simulator and says so. The
environment the Dagster processes read (`MARKETDATA_DATABASE_URL`,
`MARKETDATA_DAGSTER_STORAGE_URL`, `DAGSTER_HOME`) is exported here and nowhere below.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from marketdata_pipeline.lib.errors import ConfigError
from marketdata_pipeline.lib.postgres.connection import ensure_schema
from marketdata_pipeline.lib.postgres.embedded import ensure_embedded, sqlalchemy_url
from marketdata_pipeline.lib.settings import (
    EVENT_BATCH_SIZE,
    PROJECT_ROOT,
    StoreLocation,
    load_settings,
    store_location,
)

if TYPE_CHECKING:
    from marketdata_pipeline.lib.settings_model import Settings

#: The repository's instance configuration (copied into a default DAGSTER_HOME).
INSTANCE_TEMPLATE = PROJECT_ROOT / "dagster.yaml"
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
#: The simulator has no quota, so runs on it do not wait on the free tier's 5/minute.
SIMULATOR_REQUESTS_PER_MINUTE = 600


@dataclass(frozen=True)
class Runtime:
    """What a command needs: validated settings (only the store's location for the commands
    that need no more), the database URLs, the Dagster home."""

    settings: Any  # Settings, or StoreLocation for `prepare(with_dagster_home=False)`
    database_url: str
    dagster_storage_url: str
    dagster_home: Path


def prepare(
    settings: Settings | StoreLocation | None = None, *, with_dagster_home: bool = True
) -> Runtime:
    """Resolve the database and Dagster home, export their variables, migrate the schema.

    Without `settings`, a command that runs no Dagster (`with_dagster_home=False`) reads only
    the store's location (`store_location`: no pydantic import, ~0.25 s saved); the others
    read the whole `Settings`.
    """
    if settings is None:
        settings = load_settings() if with_dagster_home else store_location()
    if settings.database_url:
        database_url = settings.database_url
        storage_url = settings.dagster_storage_url or sqlalchemy_url(database_url)
    else:
        if not (settings.home / "pgdata").exists():
            # A new store is only ever made where the settings say, and it says so.
            print(f"creating the candle store under {settings.home}", file=sys.stderr)
        urls = ensure_embedded(settings.home / "pgdata")
        database_url = urls["candles"]
        storage_url = settings.dagster_storage_url or urls["dagster"]
        os.environ["MARKETDATA_DATABASE_URL"] = database_url
        settings = settings.with_database(database_url)
    os.environ["MARKETDATA_DAGSTER_STORAGE_URL"] = storage_url
    # Dagster reads it at every event: batched event writes for runs in this process too.
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)
    ensure_schema(database_url)
    home = settings.dagster_home.resolve()
    if with_dagster_home:
        home.mkdir(parents=True, exist_ok=True)
        target = home / "dagster.yaml"
        # Keep our default home in sync with the repo's dagster.yaml; never overwrite the
        # instance file of a DAGSTER_HOME the user chose themselves.
        if not target.exists() or settings.dagster_home_override is None:
            shutil.copyfile(INSTANCE_TEMPLATE, target)
        os.environ["DAGSTER_HOME"] = str(home)
    return Runtime(settings, database_url, storage_url, home)


@contextmanager
def simulator_if_no_key(settings: Settings) -> Iterator[Settings]:
    """`settings` unchanged when an API key is set; otherwise the settings of a local simulator
    started for the duration (loudly: its data is not market data).

    A base URL without a key is a configuration mistake, not a wish for the simulator.
    """
    if settings.api_key_value():
        yield settings
        return
    if settings.base_url_configured:
        raise ConfigError(
            f"no Polygon API key for POLYGON_BASE_URL {settings.base_url}: set POLYGON_API_KEY "
            "(or MASSIVE_API_KEY), or unset POLYGON_BASE_URL to use the local simulator"
        )
    from pydantic import SecretStr

    from polygon_simulator.server import SimulatorServer

    with SimulatorServer() as server:
        print(
            f"POLYGON_API_KEY is not set: using the local SIMULATOR at {server.base_url} "
            "(simulated prices, not market data; rows are stored with source 'simulator')",
            file=sys.stderr,
            flush=True,
        )
        # The simulator's own values are right by construction: a copy, not a re-validation.
        yield settings.model_copy(
            update={
                "api_key": SecretStr(server.api_key),
                "base_url": server.base_url,
                "requests_per_minute": max(
                    settings.requests_per_minute, SIMULATOR_REQUESTS_PER_MINUTE
                ),
                "simulated": True,
                # Its world, not its port, names its pages: a killed command's rerun reuses them.
                "simulator_world": server.state.config.world,
            }
        )


def child_environment(settings: Settings) -> dict[str, str]:
    """The environment for Dagster processes started by the command line (`make dev`)."""
    env = dict(os.environ)
    # `dagster dev` warns that it is superseded by `dg dev` (dagster-dg-cli, not installed
    # here): the one warning every `make dev` would print, with nothing for the user to do.
    quiet = "ignore:Function `dev_command` is superseded:FutureWarning"
    env["PYTHONWARNINGS"] = ",".join(w for w in (env.get("PYTHONWARNINGS"), quiet) if w)
    if settings.simulated:
        env.update(
            POLYGON_API_KEY=settings.api_key_value() or "",
            POLYGON_BASE_URL=settings.base_url,
            POLYGON_REQUESTS_PER_MINUTE=str(settings.requests_per_minute),
            MARKETDATA_SIMULATED="1",
            MARKETDATA_SIMULATOR_WORLD=settings.simulator_world or "",
        )
    return env
