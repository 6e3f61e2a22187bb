"""Connections to the candle store, without Dagster: URL resolution, connect, migrate once.

The command line's light commands (`symbols`, `db`, `coverage`) import only this, so they start
in a fraction of the time the code location takes; `PostgresDatabase` builds on it.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg

from marketdata_pipeline.lib.errors import ConfigError
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.embedded import ensure_embedded
from marketdata_pipeline.lib.settings import redact_url, validate_database_url

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def resolve_database_url(url: str | None, home: str | Path | None) -> str:
    """The candle-store URL: `url`, else the embedded server under `home`."""
    if url:
        return validate_database_url(url, "database URL")
    if home is None:
        raise ConfigError("no database: give PostgresDatabase a url or an embedded home")
    return ensure_embedded(Path(home) / "pgdata")["candles"]


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a psycopg connection, turning failures into a ConfigError without the password."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"cannot connect to Postgres at {redact_url(url)}: {reason}") from None


def ensure_schema(url: str) -> None:
    """Create or migrate the `marketdata` schema once per process and URL."""
    if url in _migrated:
        return
    with _migrate_lock:
        if url in _migrated:
            return
        with connect(url) as conn:
            migrate(conn)
        _migrated.add(url)
