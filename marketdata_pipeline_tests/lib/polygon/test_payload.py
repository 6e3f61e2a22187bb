"""Parsing and normalising real Polygon response samples (pure logic, no network)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError
from marketdata_pipeline.lib.polygon.payload import normalise_bars, parse_page
from marketdata_pipeline.lib.symbols import AssetClass

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _normalise(page, asset_class, endpoint, symbol=None) -> pl.DataFrame:
    return normalise_bars(
        page.bars,
        asset_class=asset_class,
        endpoint=endpoint,
        symbol=symbol,
        provisional=page.provisional,
        fetched_at=NOW,
        source=f"polygon:{endpoint}",
    )


def test_range_sample_parses_to_new_york_dates_across_the_2005_dst_change(fixtures_dir: Path):
    body = (
        fixtures_dir / "v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json"
    ).read_bytes()
    page = parse_page(body, request="AAPL")
    frame = _normalise(page, AssetClass.STOCK, "range", "AAPL")
    assert frame.get_column("day").to_list() == [dt.date(2005, 4, 1), dt.date(2005, 4, 4)]
    # 00:00 EST = 05:00Z before the change on 2005-04-03, 00:00 EDT = 04:00Z after it.
    assert frame.get_column("ts").to_list() == [
        dt.datetime(2005, 4, 1, 5, tzinfo=dt.UTC),
        dt.datetime(2005, 4, 4, 4, tzinfo=dt.UTC),
    ]
    first = frame.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"]) == (
        1.5032,
        1.5064,
        1.4489,
        1.4604,
    )
    assert first["volume"] == 642646396.0
    assert first["vwap"] == 1.469
    assert first["transactions"] == 82132
    assert frame.get_column("t_aligned").all()
    assert frame.get_column("symbol").to_list() == ["AAPL", "AAPL"]


def test_crypto_range_sample_keeps_fractional_volume_and_uses_utc_days(fixtures_dir: Path):
    body = (fixtures_dir / "openapi_examples" / "crypto_range_X-BTCUSD_1_day.json").read_bytes()
    page = parse_page(body, request="BTCUSD")
    assert page.ticker == "X:BTCUSD"
    frame = _normalise(page, AssetClass.CRYPTO, "range", "BTCUSD")
    assert frame.get_column("volume").to_list() == [303067.6562332156, 323339.6922892879]
    # The 2020-era spec sample is stamped 04:00Z (New York midnight): a convention the vendor
    # used, so the bars belong to their dates and are kept, with the raw t as provenance.
    assert frame.get_column("day").to_list() == [dt.date(2020, 6, 1), dt.date(2020, 6, 2)]
    assert frame.get_column("t_aligned").all()
    assert frame.get_column("vendor_t").to_list() == [1590984000000, 1591070400000]


def test_grouped_sample_reads_tickers_from_T_and_the_close_stamp_gives_the_session_date(
    fixtures_dir: Path,
):
    body = (fixtures_dir / "openapi_examples" / "stocks_grouped_daily.json").read_bytes()
    frame = _normalise(parse_page(body, request="grouped"), AssetClass.STOCK, "grouped")
    assert frame.get_column("symbol").to_list() == ["KIMpL", "TANH", "VSAT"]
    # t = 1602705600000 = 2020-10-14 20:00Z = 16:00 New York: the session of 2020-10-14.
    assert frame.get_column("day").unique().to_list() == [dt.date(2020, 10, 14)]
    assert frame.get_column("ts").unique().to_list() == [
        dt.datetime(2020, 10, 14, 4, tzinfo=dt.UTC)
    ]
    assert frame.filter(pl.col("symbol") == "TANH").get_column("volume").item() == 25933.6


def test_crypto_grouped_sample_strips_the_x_prefix(fixtures_dir: Path):
    body = (fixtures_dir / "openapi_examples" / "crypto_grouped_daily.json").read_bytes()
    frame = _normalise(parse_page(body, request="grouped"), AssetClass.CRYPTO, "grouped")
    assert frame.get_column("symbol").to_list() == ["ARDRUSD", "NGCUSD", "ZSCUSD"]


def test_page_with_next_url_is_kept_for_pagination(fixtures_dir: Path):
    body = (
        fixtures_dir / "openapi_examples" / "stocks_range_AAPL_1_day_with_next_url.json"
    ).read_bytes()
    page = parse_page(body, request="AAPL")
    assert page.next_url is not None and "cursor=" in page.next_url
    assert page.bars.height == 2


@pytest.mark.parametrize(
    "body",
    [
        b'{"ticker":"AAMC","queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK"}',
        b'{"ticker":"AAMC","resultsCount":0,"status":"OK","results":null}',
        b'{"ticker":"AAMC","status":"OK","results":[]}',
    ],
)
def test_missing_null_or_empty_results_mean_no_bars(body: bytes):
    page = parse_page(body, request="AAMC")
    assert page.bars.height == 0
    frame = _normalise(page, AssetClass.STOCK, "range", "AAMC")
    assert frame.height == 0


def test_delayed_status_is_accepted_and_marked_provisional():
    body = b'{"ticker":"A","status":"DELAYED","resultsCount":1,"results":[{"o":1,"h":2,"l":0.5,"c":1.5,"v":10,"t":1704171600000}]}'  # noqa: E501
    page = parse_page(body, request="A")
    assert page.provisional
    assert _normalise(page, AssetClass.STOCK, "range", "A").get_column("provisional").all()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "not valid JSON"),
        (b'{"ticker":"A","status":"OK","results":[{"o":1,"h":2', "not valid JSON"),
        (b"", "empty body"),
        (b"[1, 2]", "top level is list"),
        (b'{"status":"OK","results":{"o":1}}', "'results' is dict"),
        (b'{"status":"OK","results":[{"o":"abc","t":1}]}', "results[0].o is 'abc'"),
        (b'{"status":"ERROR","error":"Unknown API Key"}', "status 'ERROR'"),
        (b'{"status":"OK","resultsCount":3,"results":[{"o":1,"t":1}]}', "resultsCount=3"),
    ],
)
def test_malformed_pages_raise_a_payload_error_naming_the_request(body: bytes, expected: str):
    with pytest.raises(PolygonPayloadError, match="AAPL 2024") as info:
        parse_page(body, request="AAPL 2024-01-02..2024-01-05")
    assert expected in str(info.value)


def test_fractional_or_missing_timestamps_become_null_not_truncated():
    body = b'{"status":"OK","results":[{"o":1,"h":2,"l":0.5,"c":1.5,"v":10,"t":1704171600000.5}]}'
    frame = _normalise(parse_page(body, request="A"), AssetClass.STOCK, "range", "A")
    assert frame.get_column("day").to_list() == [None]
    assert frame.get_column("t_aligned").to_list() == [False]
