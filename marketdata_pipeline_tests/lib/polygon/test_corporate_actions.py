"""Splits and dividends from the reference endpoints: real samples, the simulator over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from marketdata_pipeline.lib.polygon.corporate_actions import (
    fetch_dividends,
    fetch_splits,
    parse_dividend,
    parse_split,
)
from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError
from marketdata_pipeline_tests.resources import make_polygon

REFERENCE = Path(__file__).parents[2] / "fixtures" / "polygon" / "reference"
NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def records(name: str) -> list[dict]:
    return json.loads((REFERENCE / name).read_text())["results"]


@pytest.mark.parametrize(
    "name",
    [
        "v3_reference_splits__openapi_example.json",
        "v3_reference_splits__client_mock.json",
        "stocks_v1_splits__docs_sample.json",
    ],
)
def test_every_real_split_sample_parses(name):
    rows = [parse_split(r, source="s", fetched_at=NOW) for r in records(name)]
    assert all(isinstance(r, dict) for r in rows), rows
    brw = [r for r in rows if r["symbol"] == "BRW"]
    if brw:  # the client mock's 1-for-2 reverse split
        assert (brw[0]["split_from"], brw[0]["split_to"]) == (2.0, 1.0)


@pytest.mark.parametrize(
    "name",
    [
        "v3_reference_dividends__openapi_example.json",
        "v3_reference_dividends__client_mock.json",
        "stocks_v1_dividends__docs_sample.json",
    ],
)
def test_every_real_dividend_sample_parses_with_a_stable_key(name):
    rows = [parse_dividend(r, source="s", fetched_at=NOW) for r in records(name)]
    assert all(isinstance(r, dict) for r in rows), rows
    again = [parse_dividend(r, source="s", fetched_at=NOW) for r in records(name)]
    assert [r["dividend_id"] for r in rows] == [r["dividend_id"] for r in again]
    assert len({(r["symbol"], r["ex_dividend_date"], r["dividend_id"]) for r in rows}) == len(rows)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (
            {"ticker": "A", "execution_date": "2024-01-02", "split_from": 0, "split_to": 2},
            "positive",
        ),
        (
            {"ticker": "A", "execution_date": "2024-01-02", "split_from": "1", "split_to": 2},
            "positive",
        ),
        (
            {"ticker": "A", "execution_date": "2024/01/02", "split_from": 1, "split_to": 2},
            "required",
        ),
        ({"execution_date": "2024-01-02", "split_from": 1, "split_to": 2}, "required"),
        ([1, 2], "expected an object"),
    ],
)
def test_unusable_split_records_are_explained(record, reason):
    result = parse_split(record, source="s", fetched_at=NOW)
    assert isinstance(result, str) and reason in result


SPLITS = [
    {"ticker": t, "execution_date": f"2024-0{m}-1{m}", "split_from": 1, "split_to": 2}
    for m, t in enumerate(["AAA", "BBB", "CCC", "DDD", "EEE"], start=1)
]


def test_a_refresh_is_one_whole_market_query_following_cursors(sim):
    sim.configure(
        splits=SPLITS, dividends=[{"ticker": "AAA", "ex_dividend_date": "2024-02-01",
                                   "cash_amount": 0.1}]
    )  # fmt: skip
    client = make_polygon(sim).get_client()
    paged = fetch_splits(client, dt.date(2024, 1, 1), dt.date(2024, 12, 31), page_limit=2)
    assert paged.pages == 3 and not paged.rejected
    assert paged.frame.get_column("symbol").to_list() == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    whole = fetch_splits(client, dt.date(2024, 2, 1), dt.date(2024, 4, 30))
    assert whole.pages == 1
    assert whole.frame.get_column("symbol").to_list() == ["BBB", "CCC", "DDD"]
    log = sim.stats()["log"]
    assert [e["kind"] for e in log] == ["splits"] * 4  # never one request per ticker
    assert "execution_date.gte=2024-02-01" in log[-1]["query"]
    dividends = fetch_dividends(client, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert dividends.frame.row(0, named=True)["cash_amount"] == 0.1


def test_reference_requests_share_the_retries_and_the_loop_guard(sim):
    sim.configure(splits=SPLITS)
    client = make_polygon(sim).get_client()
    sim.add_fault(kind="status", status_code=503, times=1, match_path="/stocks/v1/splits")
    assert fetch_splits(client, dt.date(2024, 1, 1), dt.date(2024, 12, 31)).frame.height == 5
    assert client.stats.retries == 1
    sim.add_fault(kind="next_url_loop", match_path="/stocks/v1/splits")
    with pytest.raises(PolygonPayloadError, match="repeats a next_url"):
        fetch_splits(client, dt.date(2024, 1, 1), dt.date(2024, 12, 31))


@pytest.mark.parametrize("identify", [True, False])
def test_split_and_dividend_records_say_who_answered(sim, identify):
    """A simulator behind POLYGON_BASE_URL says what it is: its events are `simulator:`, as its
    candles are; posing as Polygon (`identify` off), they are `polygon:`."""
    sim.configure(
        splits=SPLITS[:1], identify=identify,
        dividends=[{"ticker": "AAA", "ex_dividend_date": "2024-02-01", "cash_amount": 0.1}],
    )  # fmt: skip
    client = make_polygon(sim).get_client()
    family = "simulator" if identify else "polygon"
    splits = fetch_splits(client, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    dividends = fetch_dividends(client, dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    for frame in (splits.frame, dividends.frame):
        assert frame.height >= 1
        assert {s.split(":")[0] for s in frame.get_column("source")} == {family}
