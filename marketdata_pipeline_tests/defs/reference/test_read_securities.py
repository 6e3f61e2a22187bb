"""`read.security_candles` and `read.security_at` on a store built by the real CLI from the
simulator's identity world (a rename FB -> META, a reused META ticker): see
defs/reference/test_identity.py for the world's dates."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import polars as pl
import pytest

from marketdata_pipeline import read
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline_tests.defs.reference.test_identity import (  # noqa: F401 - fixture
    ETF,
    META_CO,
    world,
)
from marketdata_pipeline_tests.helpers import query

D = dt.date
pytestmark = pytest.mark.usefixtures("world")


def test_a_company_is_read_by_security_across_its_rename_and_a_ticker_point_in_time(
    cli, dagster_env, database_url
):
    code, _, err = cli("symbols", "add", "--market", "stocks", "--type", "CS", "--type", "ETF")
    assert code == 0, err
    code, out, err = cli("backfill", "--start", "2024-03-18", "--end", "2024-06-21")
    assert code == 0, out + err

    # Point in time: META before the reuse ended is the ETF, after the rename the company.
    assert read.security_at("META", "2024-03-20", url=database_url) == ETF
    assert read.security_at("META", D(2024, 6, 14), url=database_url) == META_CO
    assert read.security_at("FB", "2024-06-03", url=database_url) == META_CO
    with pytest.raises(InputError, match="nobody held 'META' on 2024-05-01"):
        read.security_at("META", "2024-05-01", url=database_url)

    meta = read.security_candles(META_CO, start="2024-03-18", end="2024-06-21", url=database_url)
    assert meta.schema == pl.Schema(read.SECURITY_BAR_SCHEMA)
    expected = query(
        database_url,
        "SELECT day, ticker, close FROM marketdata.security_daily_candles"
        " WHERE security_id = %s ORDER BY day",
        (META_CO,),
    )
    assert list(meta.select("day", "ticker", "close").iter_rows()) == expected
    # One series: FB up to the rename, META from it, one bar a day, none of the ETF's.
    assert meta["day"].is_unique().all()
    assert set(meta.filter(pl.col("day") < D(2024, 6, 10))["ticker"]) == {"FB"}
    assert set(meta.filter(pl.col("day") >= D(2024, 6, 10))["ticker"]) == {"META"}
    both = read.security_candles(
        [META_CO, ETF], start="2024-03-18", end="2024-06-21", url=database_url
    )
    assert set(both["security_id"]) == {META_CO, ETF}
    assert both.filter(pl.col("security_id") == ETF)["close"].max() < 40

    with pytest.raises(InputError, match="security ids"):
        read.security_candles([], start="2024-03-18", end="2024-06-21", url=database_url)


#: whole-market.md's Python example uses the real dates of the FB -> META rename (2022); the
#: simulated world of these tests has it on 2024-06-10, inside the test store's span.
GUIDE_DATES = {"2022-06-14": "2024-06-14", "2022-01-03": "2024-03-18", "2022-12-30": "2024-06-21"}


def test_the_whole_market_guides_python_example_runs(cli, dagster_env, database_url, capsys):
    guide = (Path(__file__).resolve().parents[3] / "docs" / "whole-market.md").read_text()
    (body,) = re.findall(r"^```python\n(.*?)^```", guide, re.S | re.M)
    for real, simulated in GUIDE_DATES.items():
        assert real in body
        body = body.replace(real, simulated)
    code, _, err = cli("symbols", "add", "--market", "stocks", "--type", "CS", "--type", "ETF")
    assert code == 0, err
    code, out, err = cli("backfill", "--start", "2024-03-18", "--end", "2024-06-21")
    assert code == 0, out + err
    namespace: dict = {}
    exec(compile(body, "whole-market.md", "exec"), namespace)
    assert namespace["meta"] == META_CO
    assert list(namespace["series"]["ticker"].unique(maintain_order=True)) == ["FB", "META"]
    assert "META" in capsys.readouterr().out
