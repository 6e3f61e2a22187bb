"""The `marketdata` schema: tables, constraints and the migrations that create them.

Migrations are numbered and applied once, in order, under a transaction-scoped advisory lock, so
several processes starting together (code server, daemon, CLI) cannot race each other.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from marketdata_pipeline.lib.candles.schema import (
    CANDLE_ASSET_NAMES,
    CANDLE_SQL_TYPES,
    REJECTED_SCHEMA,
)

SCHEMA = "marketdata"
CANDLE_TABLES = CANDLE_ASSET_NAMES
# Any constant works as long as every process uses the same one.
_MIGRATION_LOCK_ID = 7_461_022_301

_MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE SEQUENCE IF NOT EXISTS marketdata.tracked_symbols_change_seq;

        CREATE TABLE IF NOT EXISTS marketdata.tracked_symbols (
            symbol           text        NOT NULL
                CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.]{0,19}$'),
            asset_class      text        NOT NULL CHECK (asset_class IN ('stock', 'crypto')),
            active           boolean     NOT NULL DEFAULT true,
            added_at         timestamptz NOT NULL DEFAULT now(),
            updated_at       timestamptz NOT NULL DEFAULT now(),
            status           text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'ok', 'error')),
            last_success_day date,
            last_attempt_at  timestamptz,
            last_error       text,
            change_seq       bigint      NOT NULL
                DEFAULT nextval('marketdata.tracked_symbols_change_seq'),
            PRIMARY KEY (asset_class, symbol)
        );
        COMMENT ON COLUMN marketdata.tracked_symbols.change_seq IS
            'Bumped when a symbol is added or re-activated; the symbol sensor''s cursor.';

        -- Rows added or re-activated by plain SQL must wake the sensor too, so the bump lives
        -- in the database rather than in the command line.
        CREATE OR REPLACE FUNCTION marketdata.tracked_symbols_touch() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                NEW.change_seq := nextval('marketdata.tracked_symbols_change_seq');
            ELSIF NEW.active AND NOT OLD.active THEN
                NEW.change_seq := nextval('marketdata.tracked_symbols_change_seq');
            END IF;
            IF TG_OP = 'UPDATE' AND (NEW.active IS DISTINCT FROM OLD.active) THEN
                NEW.updated_at := now();
            END IF;
            RETURN NEW;
        END;
        $$ LANGUAGE plpgsql;

        DROP TRIGGER IF EXISTS tracked_symbols_touch ON marketdata.tracked_symbols;
        CREATE TRIGGER tracked_symbols_touch BEFORE INSERT OR UPDATE
            ON marketdata.tracked_symbols
            FOR EACH ROW EXECUTE FUNCTION marketdata.tracked_symbols_touch();
        """,
    ),
    (
        2,
        # Vendor reality: stock tickers are case-sensitive (`KIMpL`), and the vendor's own bar
        # timestamp is kept as provenance. Stored rows stay valid: they are all upper case.
        """
        -- The canonical form, as `lib/symbols.parse_symbol` gives it: an upper-case letter or
        -- a digit first, then letters (a stock's share class may be lower case, `KIMpL`),
        -- digits and dots; crypto entirely upper case. Plain SQL must insert that form:
        -- `aapl` is refused here rather than silently becoming another ticker.
        ALTER TABLE marketdata.tracked_symbols
            DROP CONSTRAINT IF EXISTS tracked_symbols_symbol_check;
        ALTER TABLE marketdata.tracked_symbols ADD CONSTRAINT tracked_symbols_symbol_check
            CHECK (symbol ~ '^[A-Z0-9][A-Za-z0-9.]{0,19}$'
                   AND (asset_class <> 'crypto' OR symbol = upper(symbol)));

        ALTER TABLE IF EXISTS marketdata.stock_daily_candles
            ADD COLUMN IF NOT EXISTS vendor_t bigint;
        ALTER TABLE IF EXISTS marketdata.crypto_daily_candles
            ADD COLUMN IF NOT EXISTS vendor_t bigint;
        """,
    ),
    (
        10,
        """
        -- What kind of data the store holds ('polygon' or 'simulator'), claimed by the first
        -- write: a store never mixes simulated and real rows.
        CREATE TABLE IF NOT EXISTS marketdata.store_info (
            key    text        PRIMARY KEY,
            value  text        NOT NULL,
            set_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ),
]


#: Column types of `marketdata.rejected_candles` beyond the candle columns it mirrors.
_REJECTED_EXTRA_SQL_TYPES = {
    "asset": "text NOT NULL",
    "vendor_t": "bigint",
    "reason": "text NOT NULL",
    "rejected_at": "timestamptz NOT NULL DEFAULT now()",
}


def rejected_sql_types() -> dict[str, str]:
    """Columns of `marketdata.rejected_candles`, derived from the candle schema.

    A quarantined vendor row may be missing anything, so the mirrored candle columns carry
    their types without NOT NULL or defaults.
    """
    mirrored = {
        name: CANDLE_SQL_TYPES[name].split(" NOT NULL")[0].split(" DEFAULT")[0]
        for name in REJECTED_SCHEMA
        if name in CANDLE_SQL_TYPES
    }
    return {
        "asset": _REJECTED_EXTRA_SQL_TYPES["asset"],
        **mirrored,
        **{k: v for k, v in _REJECTED_EXTRA_SQL_TYPES.items() if k != "asset"},
    }


def _create_table(table: str, columns: dict[str, str], extra: str = "") -> sql.Composed:
    body = sql.SQL(",\n    ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sqltype))
        for name, sqltype in columns.items()
    )
    return sql.SQL("CREATE TABLE IF NOT EXISTS {schema}.{table} (\n    {body}{extra}\n)").format(
        schema=sql.Identifier(SCHEMA),
        table=sql.Identifier(table),
        body=body,
        extra=sql.SQL(extra),
    )


def _add_missing_columns(table: str, columns: dict[str, str]) -> list[sql.Composed]:
    """ALTER statements that give an existing table the schema's newer (nullable) columns."""
    return [
        sql.SQL("ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS {} {}").format(
            sql.Identifier(SCHEMA),
            sql.Identifier(table),
            sql.Identifier(name),
            sql.SQL(sqltype),
        )
        for name, sqltype in columns.items()
        if "NOT NULL" not in sqltype or "DEFAULT" in sqltype
    ]


def rejected_table_ddl() -> list[sql.Composed]:
    """CREATE (and bring up to date) `marketdata.rejected_candles` from the candle schema."""
    columns = rejected_sql_types()
    return [
        _create_table("rejected_candles", columns),
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS rejected_candles_slice"
            " ON marketdata.rejected_candles (asset, symbol, day)"
        ),
        *_add_missing_columns("rejected_candles", columns),
    ]


def candle_table_ddl(table: str) -> sql.Composed:
    """CREATE TABLE IF NOT EXISTS for one candle table, keyed on (symbol, day)."""
    columns = sql.SQL(",\n    ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sqltype))
        for name, sqltype in CANDLE_SQL_TYPES.items()
    )
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {schema}.{table} (\n    {columns},\n"
        "    PRIMARY KEY (symbol, day)\n)"
    ).format(schema=sql.Identifier(SCHEMA), table=sql.Identifier(table), columns=columns)


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply pending migrations and create the candle tables; return the versions applied.

    Runs in its own transaction on `conn` and commits it.
    """
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK_ID,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS marketdata.schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r[0] for r in conn.execute("SELECT version FROM marketdata.schema_migrations")}
        for statement in rejected_table_ddl():
            conn.execute(statement)
        for version, statement in _MIGRATIONS:
            if version in done:
                continue
            conn.execute(statement)
            conn.execute(
                "INSERT INTO marketdata.schema_migrations (version) VALUES (%s)", (version,)
            )
            applied.append(version)
        for table in CANDLE_TABLES:
            conn.execute(candle_table_ddl(table))
            # Nullable columns added to the schema later reach existing tables by themselves.
            for statement in _add_missing_columns(table, CANDLE_SQL_TYPES):
                conn.execute(statement)
    return applied
