"""`PostgresDatabase`: where the candle store lives, and connections to it.

With no URL configured it starts (or reuses) the embedded server under the store's home
directory, so a fresh clone works without a database install. Connection failures become a
`ConfigError` that names the server with its password redacted.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
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


class PostgresDatabase(dg.ConfigurableResource):
    """The Postgres database holding the `marketdata` schema (candles, symbols, rejects).

    `url` is a `postgresql://` URL (give it through `dg.EnvVar` so a password never shows in
    the Dagster UI); leave it unset to use the embedded server under `embedded_home` (started
    on first use, then reused).
    """

    url: str | None = None
    embedded_home: str | None = None

    def resolved_url(self) -> str:
        """The URL actually used (starting the embedded server when none is configured)."""
        return resolve_database_url(self.url, self.embedded_home)

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        """A connection with the schema migrated; commits on success, rolls back on error."""
        url = self.resolved_url()
        ensure_schema(url)
        with connect(url, autocommit=autocommit) as conn:
            yield conn
