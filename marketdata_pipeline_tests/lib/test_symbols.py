"""The ticker case rule: in Python, in the tracked-symbols table's CHECK, through migrations."""

from __future__ import annotations

import psycopg
import pytest

from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.ddl import (
    _MIGRATIONS,
    CANDLE_TABLES,
    migrate,
)
from marketdata_pipeline.lib.postgres.tracked_symbols import (
    active_symbols,
    add_symbols,
    find_symbols,
)
from marketdata_pipeline.lib.symbols import AssetClass, Symbol, parse_symbol, parse_symbols
from marketdata_pipeline_tests.helpers import query


@pytest.mark.parametrize(
    ("raw", "asset_class", "canonical", "ticker"),
    [
        ("aapl", None, "AAPL", "AAPL"),
        ("brk.a", None, "BRK.A", "BRK.A"),
        ("AAPL", None, "AAPL", "AAPL"),
        ("KIMpL", None, "KIMpL", "KIMpL"),
        ("BRK.a", None, "BRK.a", "BRK.a"),
        ("x:btcusd", None, "BTCUSD", "X:BTCUSD"),
        ("btcUSD", "crypto", "BTCUSD", "X:BTCUSD"),
    ],
)
def test_case_rule(raw, asset_class, canonical, ticker):
    sym = parse_symbol(raw, asset_class)
    assert (sym.symbol, sym.api_ticker) == (canonical, ticker)


def test_vendor_case_and_friendly_input_are_different_symbols():
    assert parse_symbols(["KIMpL", "kimpl", "KIMPL"]) == [
        Symbol("KIMpL", AssetClass.STOCK),
        Symbol("KIMPL", AssetClass.STOCK),
    ]


@pytest.mark.parametrize("raw", ["kIMpL", "1ABC", "AB-C"])
def test_a_stock_must_start_with_an_upper_case_letter(raw):
    with pytest.raises(InputError, match="is not a plausible ticker"):
        parse_symbol(raw)


def test_the_table_check_holds_the_canonical_form(database_url):
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO marketdata.tracked_symbols (symbol, asset_class)"
            " VALUES ('KIMpL', 'stock'), ('BRK.B', 'stock'), ('ETHUSD', 'crypto')"
        )
        conn.commit()
        # Plain SQL must use the canonical form: friendly input is the command line's job.
        for bad, cls in [("aapl", "stock"), ("kIMpL", "stock"), ("ETHusd", "crypto")]:
            with pytest.raises(psycopg.errors.CheckViolation), conn.transaction():
                conn.execute(
                    "INSERT INTO marketdata.tracked_symbols (symbol, asset_class) VALUES (%s, %s)",
                    (bad, cls),
                )
        stocks, bad_rows = active_symbols(conn, AssetClass.STOCK)
        assert [s.symbol for s in stocks] == ["BRK.B", "KIMpL"] and bad_rows == {}
        changes = add_symbols(conn, parse_symbols(["KIMpL", "brk.b", "aapl"]))
        assert [(c.symbol.symbol, c.outcome) for c in changes] == [
            ("KIMpL", "already tracked"),
            ("BRK.B", "already tracked"),
            ("AAPL", "added"),
        ]
        assert find_symbols(conn, "KIMpL") == [Symbol("KIMpL", AssetClass.STOCK)]
        assert find_symbols(conn, "aapl") == [Symbol("AAPL", AssetClass.STOCK)]
        assert find_symbols(conn, "x:ethusd") == [Symbol("ETHUSD", AssetClass.CRYPTO)]


def test_migration_keeps_existing_rows_and_adds_vendor_t(pg_server):
    """A store created before migration 2 keeps its rows and gains the new rules."""
    import uuid

    name = f"m_{uuid.uuid4().hex[:10]}"
    admin = pg_server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.get_uri(name)
    try:
        with psycopg.connect(url) as conn:
            # The schema as migration 1 left it, with a candle table without vendor_t.
            conn.execute("CREATE SCHEMA marketdata")
            conn.execute(
                "CREATE TABLE marketdata.schema_migrations (version integer PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            migrations = dict(_MIGRATIONS)
            conn.execute(migrations[1])
            conn.execute("INSERT INTO marketdata.schema_migrations VALUES (1)")
            # Candle tables were then created outside the migrations (migration 0 now).
            conn.execute(migrations[0])
            for table in CANDLE_TABLES:
                conn.execute(f"ALTER TABLE marketdata.{table} DROP COLUMN vendor_t")
            conn.execute(
                "INSERT INTO marketdata.stock_daily_candles (symbol, day, ts, open, high, low,"
                " close, volume, adjusted, source, fetched_at) VALUES ('AAPL', '2024-01-02',"
                " now(), 1, 1, 1, 1.0, 1, true, 'polygon:range', now())"
            )
            conn.execute(
                "INSERT INTO marketdata.tracked_symbols (symbol, asset_class)"
                " VALUES ('AAPL', 'stock'), ('BTCUSD', 'crypto')"
            )
            conn.commit()
            assert migrate(conn) == [v for v, _ in _MIGRATIONS if v != 1]
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute("UPDATE marketdata.tracked_symbols SET symbol = 'aAPL'")
            conn.rollback()
        assert query(
            url, "SELECT symbol, asset_class FROM marketdata.tracked_symbols ORDER BY symbol"
        ) == [("AAPL", "stock"), ("BTCUSD", "crypto")]
        assert query(url, "SELECT symbol, vendor_t FROM marketdata.stock_daily_candles") == [
            ("AAPL", None)
        ]
        for table in CANDLE_TABLES:
            columns = query(
                url,
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = 'marketdata' AND table_name = %s",
                (table,),
            )
            assert ("vendor_t",) in columns
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_sensor_requests_the_vendor_ticker_as_stored(database, database_url):
    import dagster as dg

    from marketdata_pipeline_tests.helpers import tracked_symbols_sensor

    with psycopg.connect(database_url) as conn:
        add_symbols(conn, parse_symbols(["KIMpL", "aapl"]))
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"database": database})
        result = tracked_symbols_sensor(context)
    (request,) = result.run_requests
    config = request.run_config["ops"]["stock_daily_candles"]["config"]
    assert config["symbols"] == ["AAPL", "KIMpL"]


def test_the_migrated_tables_match_the_column_registry(database_url):
    """Numbered migrations are the one way the schema changes: a column added to the registry
    (`lib/candles/columns.py`) without its migration fails here, naming the column."""
    from marketdata_pipeline.lib.candles.columns import CANDLE_COLUMN_SPECS
    from marketdata_pipeline.lib.postgres.ddl import rejected_sql_types

    def columns(table: str) -> list[tuple[str, str, bool]]:
        return query(
            database_url,
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns"
            " WHERE table_schema = 'marketdata' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )

    def canonical(sqltype: str) -> str:  # timestamptz -> timestamp with time zone
        return query(database_url, "SELECT %s::regtype::text", (sqltype,))[0][0]

    registry = [(c.name, canonical(c.bare_sql_type), c.nullable) for c in CANDLE_COLUMN_SPECS]
    for table in CANDLE_TABLES:
        assert columns(table) == registry, table
    rejected = [
        (
            name,
            canonical(sqltype.split(" NOT NULL")[0].split(" DEFAULT")[0]),
            "NOT NULL" not in sqltype,
        )
        for name, sqltype in rejected_sql_types().items()
    ]
    assert columns("rejected_candles") == rejected
