"""One record of reference reads: migration 15 moves the ticker loads' rows of
`reference_refreshes` into `reference_refresh` and drops the old table."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from marketdata_pipeline.lib.postgres import ddl
from marketdata_pipeline.lib.postgres.universe import record_refresh, refreshed_on
from marketdata_pipeline_tests.helpers import query


def test_migration_15_moves_the_ticker_loads_into_the_one_refresh_table(database_url, monkeypatch):
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A store as it was before migration 15, with a day of ticker loads and a splits read.
        conn.execute("DROP SCHEMA marketdata CASCADE")
        before = [m for m in ddl._MIGRATIONS if m[0] != 15]
        with monkeypatch.context() as patch:
            patch.setattr(ddl, "_MIGRATIONS", before)
            assert 15 not in ddl.migrate(conn)
        conn.execute(
            "INSERT INTO marketdata.reference_refreshes (kind, scope, refreshed_on, requests)"
            " VALUES ('tickers', 'stocks', '2025-06-02', 4), ('tickers_full', 'stocks',"
            " '2025-06-01', 7)"
        )
        conn.execute(
            "INSERT INTO marketdata.reference_refresh (kind, scope, refreshed_on, covers_from,"
            " covers_to, requests, records) VALUES ('splits', 'market', '2025-06-02',"
            " '2025-01-01', '2025-06-02', 1, 3)"
        )
        assert ddl.migrate(conn) == [15]
        assert refreshed_on(conn, "tickers", "stocks") == dt.date(2025, 6, 2)
        assert refreshed_on(conn, "tickers_full", "stocks") == dt.date(2025, 6, 1)
    rows = query(
        database_url,
        "SELECT kind, scope, refreshed_on, covers_from, covers_to, requests, records, watermark"
        " FROM marketdata.reference_refresh ORDER BY kind",
    )
    d = dt.date
    assert rows == [
        ("splits", "market", d(2025, 6, 2), d(2025, 1, 1), d(2025, 6, 2), 1, 3, None),
        ("tickers", "stocks", d(2025, 6, 2), d(2025, 6, 2), d(2025, 6, 2), 4, 0, None),
        ("tickers_full", "stocks", d(2025, 6, 1), d(2025, 6, 1), d(2025, 6, 1), 7, 0, None),
    ]
    assert query(database_url, "SELECT to_regclass('marketdata.reference_refreshes')") == [(None,)]


def test_a_ticker_load_records_its_watermark_and_cursor(database_url):
    mark = dt.datetime(2025, 6, 2, 4, tzinfo=dt.UTC)
    with psycopg.connect(database_url) as conn:
        record_refresh(
            conn, "tickers", "stocks", dt.date(2025, 6, 2), 3, watermark=mark, resume_after="AAPL"
        )
        assert refreshed_on(conn, "tickers", "stocks") == dt.date(2025, 6, 2)
        record_refresh(conn, "tickers", "stocks", dt.date(2025, 6, 3), 1, watermark=mark)
    assert query(
        database_url,
        "SELECT refreshed_on, requests, watermark, resume_after FROM marketdata.reference_refresh",
    ) == [(dt.date(2025, 6, 3), 1, mark, None)]


@pytest.mark.parametrize("kind", ["tickers", "splits"])
def test_a_kind_never_loaded_has_no_day(database_url, kind):
    with psycopg.connect(database_url) as conn:
        assert refreshed_on(conn, kind, "stocks") is None
