"""The store's source claim: a store holds simulated rows or real ones, never both.

`marketdata.store_info` records which kind of API wrote the store first; every write checks
it inside its own transaction (`claim_source`, called by `store.write_batch`) and is refused with
`MixedSourcesError` (exit 3, documented in docs/api-keys.md) when the run's kind differs.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from marketdata_pipeline.lib.candles.batch import SOURCE_FAMILIES, SourceFamily
from marketdata_pipeline.lib.errors import MarketdataError
from marketdata_pipeline.lib.postgres.ddl import CANDLE_TABLES, SCHEMA


class MixedSourcesError(MarketdataError):
    """Simulated rows would land in a store of real ones, or the other way round."""

    exit_code = 3


def mixed_sources_message(held: str, fetched: str) -> str:
    """The refusal users read when a run's source is not the store's (docs/api-keys.md)."""
    return (
        f"this store holds {held} data and the run fetched {fetched} data: a store never "
        "mixes simulated and real rows. Use another store for one of them (MARKETDATA_HOME "
        "or MARKETDATA_DATABASE_URL), or empty this one first."
    )


def claim_source(conn: psycopg.Connection, family: SourceFamily) -> None:
    """Check the store's claim against `family` inside the caller's transaction, and make the
    claim when the store has none.

    The claim's row is inserted or share-locked here, so it cannot change until the write
    commits; two first writes at once serialise on the insert, and the second sees the first's
    claim. A store written before claims were recorded is claimed from what it holds: if any
    stored row is of the other kind, the write is refused like any other mixing.
    """
    inserted = (
        conn.execute(
            "INSERT INTO marketdata.store_info (key, value) VALUES ('source', %s)"
            " ON CONFLICT (key) DO NOTHING RETURNING value",
            (family,),
        ).fetchone()
        is not None
    )
    held = conn.execute(
        "SELECT value FROM marketdata.store_info WHERE key = 'source' FOR SHARE"
    ).fetchone()
    if held is not None and held[0] != family:
        raise MixedSourcesError(mixed_sources_message(held[0], family))
    if inserted:
        other = _other_family_stored(conn, family)
        if other is not None:
            raise MixedSourcesError(mixed_sources_message(other, family))


def _other_family_stored(conn: psycopg.Connection, family: SourceFamily) -> str | None:
    """The other source family when any candle table holds a row labelled with it (`other:...`),
    else None.

    Runs once per store, when the claim is first recorded: a table of one kind is read to its
    end then, a mixed one stops at the first row of the other kind.
    """
    (other,) = (f for f in SOURCE_FAMILIES if f != family)
    for table in CANDLE_TABLES:
        name = f"{SCHEMA}.{table}"
        if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is None:
            continue
        row = conn.execute(
            sql.SQL("SELECT 1 FROM {} WHERE source LIKE %s LIMIT 1").format(
                sql.Identifier(SCHEMA, table)
            ),
            (f"{other}:%",),
        ).fetchone()
        if row is not None:
            return other
    return None
