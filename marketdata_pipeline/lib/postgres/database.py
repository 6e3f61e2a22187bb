"""`PostgresDatabase`: where the candle store lives, and connections to it.

With no URL configured it starts (or reuses) the embedded server under `MARKETDATA_HOME`, so a
fresh clone works without a database install. Connection failures become a `ConfigError` that
names the server with its password redacted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from marketdata_pipeline.lib.errors import ConfigError
from marketdata_pipeline.lib.postgres.ddl import migrate
from marketdata_pipeline.lib.postgres.embedded import ensure_embedded
from marketdata_pipeline.lib.settings import load_settings, redact_url, validate_database_url

_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def resolve_database_url(url: str | None = None) -> str:
    """The candle-store URL: `url`, else MARKETDATA_DATABASE_URL, else the embedded server."""
    if url:
        return validate_database_url(url, "database URL")
    settings = load_settings()
    if settings.database_url:
        return settings.database_url
    return ensure_embedded(settings.home / "pgdata")["candles"]


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


class PostgresDatabase(dg.ConfigurableResource):
    """The Postgres database holding the `marketdata` schema (candles, symbols, rejects).

    `url` is a `postgresql://` URL; leave it unset to use the embedded server under
    `MARKETDATA_HOME` (started on first use, then reused). Give it through `dg.EnvVar` so a
    password never shows in the Dagster UI.
    """

    url: str | None = None

    def resolved_url(self) -> str:
        """The URL actually used (starting the embedded server when none is configured)."""
        return resolve_database_url(self.url)

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A connection with the schema migrated; commits on success, rolls back on error."""
        url = self.resolved_url()
        ensure_schema(url)
        with connect(url, autocommit=autocommit) as conn:
            yield conn
