"""`PostgresDatabase`: where the candle store lives, and connections to it.

With no URL configured it starts (or reuses) the embedded server under the store's home
directory, so a fresh clone works without a database install. Connection failures become a
`ConfigError` that names the server with its password redacted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

# The connection helpers live apart so commands that need no Dagster import none; they are
# re-exported here for the resource's users.
from marketdata_pipeline.lib.postgres.connection import (
    connect,
    ensure_schema,
    resolve_database_url,
)

__all__ = ["PostgresDatabase", "connect", "ensure_schema", "resolve_database_url"]


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
