"""The identity tables: one owner per ticker per day, security_at, the by-security view."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from marketdata_pipeline.lib.postgres.securities import (
    AmbiguousOwnership,
    Security,
    TickerInterval,
    UnknownTicker,
    replace_intervals,
    resolve,
    upsert_securities,
)

D = dt.date
META_CO = "BBG000MM2P62"
ETF = "BBG00ZQFXB42"


def security(security_id: str, name: str) -> Security:
    return Security(security_id, name, "CS", "XNAS", None, security_id, None, None, None, True)


def test_a_write_giving_a_ticker_two_owners_on_a_day_is_refused_naming_both(database_url):
    with psycopg.connect(database_url) as conn:
        upsert_securities(conn, [security(META_CO, "Meta"), security(ETF, "Metaverse ETF")], "t")
        replace_intervals(conn, [TickerInterval(ETF, "META", D(2010, 1, 4), D(2021, 12, 31))], "t")
        conn.commit()
        clash = [
            TickerInterval(META_CO, "FB", D(2012, 5, 18), D(2021, 12, 30)),
            TickerInterval(META_CO, "META", D(2021, 12, 31), None),
        ]
        with pytest.raises(AmbiguousOwnership) as refused:
            replace_intervals(conn, clash, "t")
        assert ETF in str(refused.value) and META_CO in str(refused.value)
        assert "META" in str(refused.value)
        conn.rollback()
        # Nothing of the refused write stayed; plain SQL is refused the same way.
        rows = conn.execute("SELECT security_id FROM marketdata.ticker_history").fetchall()
        assert rows == [(ETF,)]
        with pytest.raises(psycopg.errors.ExclusionViolation, match=ETF):
            conn.execute(
                "INSERT INTO marketdata.ticker_history VALUES (%s, 'META', '2015-01-02', NULL,"
                " 'sql')",
                (META_CO,),
            )


def test_security_at_and_the_view_follow_the_intervals(database_url):
    with psycopg.connect(database_url) as conn:
        upsert_securities(conn, [security(META_CO, "Meta"), security(ETF, "Metaverse ETF")], "t")
        replace_intervals(
            conn,
            [
                TickerInterval(ETF, "META", D(2010, 1, 4), D(2021, 12, 31)),
                TickerInterval(META_CO, "FB", D(2012, 5, 18), D(2022, 6, 8)),
                TickerInterval(META_CO, "META", D(2022, 6, 9), None),
            ],
            "t",
        )
        at = "SELECT marketdata.security_at(%s, %s)"
        assert conn.execute(at, ("META", D(2015, 1, 2))).fetchone() == (ETF,)
        assert conn.execute(at, ("META", D(2022, 6, 9))).fetchone() == (META_CO,)
        assert conn.execute(at, ("META", D(2022, 3, 1))).fetchone() == (None,)
        assert resolve(conn, "FB", D(2020, 6, 1)).interval.last_day == D(2022, 6, 8)
        with pytest.raises(UnknownTicker, match=r"nobody held 'META' on 2022-03-01.*BBG00ZQFXB42"):
            resolve(conn, "META", D(2022, 3, 1))
        with pytest.raises(UnknownTicker, match="ever traded as 'NOPE'"):
            resolve(conn, "NOPE", D(2022, 3, 1))
