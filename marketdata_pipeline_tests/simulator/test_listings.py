"""The simulator's listings and ticker reference: renames, reused tickers, delistings, shapes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import httpx
import pytest

from polygon_simulator import ConfigError, SimulatorServer, identity_world
from polygon_simulator.listings import universe_listing

REFERENCE = Path(__file__).parent.parent / "fixtures" / "polygon" / "reference"
STOCKS = "/v2/aggs/grouped/locale/us/market/stocks/"
TICKERS = "/v3/reference/tickers"


def sample(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


def world(**switches) -> list[dict]:
    return [listing.model_dump(mode="json") for listing in identity_world(**switches)]


def get(client: httpx.Client, path: str, **params) -> dict:
    # No `params` at all for a next_url: httpx would replace its query with an empty one.
    response = client.get(path, params=params) if params else client.get(path)
    response.raise_for_status()
    return response.json()


def closes(client: httpx.Client, ticker: str, start: str, end: str) -> dict[int, float]:
    body = get(client, f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}")
    return {bar["t"]: bar["c"] for bar in body.get("results", [])}


def grouped(client: httpx.Client, day: str) -> dict[str, dict]:
    return {bar["T"]: bar for bar in get(client, STOCKS + day).get("results", [])}


@pytest.fixture
def identity(sim: SimulatorServer) -> SimulatorServer:
    sim.configure(listings=world(), stock_universe_size=30)
    return sim


def test_ticker_list_has_the_real_shape_and_pages_by_cursor(identity, client) -> None:
    real = sample("v3_reference_tickers__client_mock.json")
    first = get(client, TICKERS, market="stocks", limit=2)
    assert list(first) == list(real)  # results, status, request_id, count, next_url
    assert set(first["results"][0]) == set(real["results"][0])
    seen = [r["ticker"] for r in first["results"]]
    url = first["next_url"]
    while url:
        assert "apiKey" not in url and url.startswith(identity.base_url)
        page = get(client, url)
        seen += [r["ticker"] for r in page["results"]]
        url = page.get("next_url")
    everything = get(client, TICKERS, market="stocks", limit=1000)
    assert "next_url" not in everything
    assert seen == [r["ticker"] for r in everything["results"]] == sorted(seen)
    assert {"META", "METV", "AAPL"} <= set(seen) and not {"FB", "SIVB", "ZZQX"} & set(seen)


def test_delisted_and_renamed_tickers_are_listed_only_with_active_false(identity, client) -> None:
    rows = get(client, TICKERS, active="false", market="stocks", limit=1000)["results"]
    by = {(r["ticker"], r["name"]): r for r in rows}
    assert {r["ticker"] for r in rows} == {"FB", "META", "SIVB", "ZZQX"}
    assert by["FB", "Meta Platforms, Inc. Class A Common Stock"]["composite_figi"] == (
        "BBG000MM2P62"
    )
    earlier_meta = by["META", "Roundhill Ball Metaverse ETF"]
    assert (
        earlier_meta["active"] is False and earlier_meta["delisted_utc"] == "2022-01-01T05:00:00Z"
    )
    assert by["SIVB", "SVB Financial Group"]["delisted_utc"] == "2023-03-10T05:00:00Z"
    no_figi = by["ZZQX", "Zeta Quixote Holdings"]
    assert "composite_figi" not in no_figi and "share_class_figi" not in no_figi


def test_filters_type_market_date_and_ticker_ranges(identity, client) -> None:
    etfs = get(client, TICKERS, type="ETF", limit=1000)["results"]
    assert {r["ticker"] for r in etfs} >= {"SPY", "METV"} and {r["type"] for r in etfs} == {"ETF"}
    crypto = get(client, TICKERS, market="crypto", limit=5)["results"]
    assert crypto and all(r["market"] == "crypto" for r in crypto)
    # Point in time: on 2015-01-02 META was the ETF's, FB Meta Platforms', SIVB traded.
    then = {r["ticker"]: r for r in get(client, TICKERS, date="2015-01-02", limit=1000)["results"]}
    assert then["META"]["name"] == "Roundhill Ball Metaverse ETF" and then["META"]["active"]
    assert {"FB", "SIVB"} <= set(then) and "METV" not in then and "ZZQX" not in then
    window = get(client, TICKERS, **{"ticker.gte": "FB", "ticker.lt": "MSFT"}, limit=1000)
    assert all("FB" <= r["ticker"] < "MSFT" for r in window["results"])
    assert get(client, TICKERS, ticker="META")["results"][0]["composite_figi"] == "BBG000MM2P62"


def test_bad_reference_parameters_answer_400(identity, client) -> None:
    for params in (
        {"limit": "0"},
        {"active": "maybe"},
        {"market": "bonds"},
        {"date": "2022-13-01"},
    ):
        response = client.get(TICKERS, params=params)
        assert response.status_code == 400, params
        assert response.json()["status"] == "ERROR"
    assert client.get(TICKERS, params={"cursor": "nope"}).status_code == 400


def test_ticker_details_answer_point_in_time_and_404_for_unknown(identity, client) -> None:
    real = sample("v3_reference_tickers_AAPL_date=2020-10-01__client_mock.json")
    aapl = get(client, TICKERS + "/AAPL", date="2020-10-01")
    assert list(aapl) == list(real)
    assert {"list_date", "composite_figi", "share_class_figi", "cik"} <= set(aapl["results"])
    now = get(client, TICKERS + "/META")["results"]
    assert now["composite_figi"] == "BBG000MM2P62" and now["list_date"] == "2012-05-18"
    then = get(client, TICKERS + "/META", date="2015-01-02")["results"]
    assert then["name"] == "Roundhill Ball Metaverse ETF" and then["active"] is True
    assert get(client, TICKERS + "/SIVB")["results"]["delisted_utc"] == "2023-03-10T05:00:00Z"
    missing = client.get(TICKERS + "/NOPE")
    assert missing.status_code == 404 and missing.json()["status"] == "NOT_FOUND"
    assert client.get(TICKERS + "/METV", params={"date": "2021-06-01"}).status_code == 404


def test_ticker_events_by_ticker_or_figi_with_the_skewed_date(identity, client) -> None:
    real = sample("vX_reference_tickers_META_events__client_mock.json")
    by_ticker = get(client, "/vX/reference/tickers/META/events", types="ticker_change")
    assert by_ticker["results"] == real["results"]  # the mock dates the change 2022-06-11
    by_figi = get(client, "/vX/reference/tickers/BBG000MM2P62/events")
    assert by_figi["results"] == real["results"]
    # FB is nobody's ticker now: the vendor answers 404 for it.
    assert client.get("/vX/reference/tickers/FB/events").status_code == 404
    identity.configure(listings=world(event_skew_days=0))
    events = get(client, "/vX/reference/tickers/META/events")["results"]["events"]
    assert events[0]["date"] == "2022-06-09"


def test_a_rename_continues_one_series_and_a_reused_ticker_has_two(identity, client) -> None:
    fb = closes(client, "FB", "2022-06-01", "2022-06-30")
    meta = closes(client, "META", "2022-06-01", "2022-06-30")
    assert max(fb) < min(meta)  # FB stops the day before META starts
    last_fb, first_meta = fb[max(fb)], meta[min(meta)]
    assert abs(first_meta / last_fb - 1) < 0.1  # one company: no jump at the rename
    earlier = closes(client, "META", "2021-12-01", "2022-06-08")
    assert earlier and max(earlier.values()) < 40  # the ETF's ~$12 prices, not Meta's
    metv = closes(client, "METV", "2022-01-03", "2022-01-10")
    assert abs(metv[min(metv)] / earlier[max(earlier)] - 1) < 0.1  # the ETF goes on as METV
    # Grouped daily agrees with the range endpoint, holder by holder.
    on_switch = grouped(client, "2022-06-09")
    assert "FB" not in on_switch and on_switch["META"]["c"] == first_meta
    assert grouped(client, "2022-06-08")["FB"]["c"] == last_fb
    assert "META" not in grouped(client, "2022-03-01")


def test_a_delisted_ticker_stops_on_its_last_day(identity, client) -> None:
    sivb = closes(client, "SIVB", "2023-03-01", "2023-03-31")
    assert len(sivb) == 7  # 2023-03-01 .. 2023-03-09
    assert "SIVB" in grouped(client, "2023-03-09") and "SIVB" not in grouped(client, "2023-03-10")


def test_each_identity_fact_is_switchable(sim: SimulatorServer, client) -> None:
    sim.configure(listings=world(rename=False, reused_ticker=False), stock_universe_size=30)
    assert not closes(client, "FB", "2022-06-01", "2022-06-30")
    # Without the listings META is a plain universe ticker again, trading every session.
    assert len(closes(client, "META", "2021-12-01", "2022-06-30")) > 130
    assert "SIVB" in grouped(client, "2023-03-09")
    sim.configure(listings=[])
    assert not closes(client, "SIVB", "2023-03-01", "2023-03-31")


def test_overlapping_owners_are_refused_naming_both(sim: SimulatorServer) -> None:
    clash = world(rename=True, reused_ticker=False)
    clash.append({"name": "Other Co", "tickers": [{"ticker": "META", "first_day": "2023-01-03"}]})
    with pytest.raises(ConfigError, match=r"Meta Platforms.*Other Co.*META"):
        sim.configure(listings=clash)


def day_two_changes() -> list[dict]:
    """Changes of 2025-06-03: NEWCO lists, AAPL is delisted, MSFT is renamed MSFX."""
    aapl = universe_listing("AAPL").model_dump(mode="json")
    aapl["tickers"][0]["last_day"] = "2025-06-02"
    msft = universe_listing("MSFT").model_dump(mode="json")
    msft["tickers"] = [
        {**msft["tickers"][0], "last_day": "2025-06-02"},
        {"ticker": "MSFX", "first_day": "2025-06-03"},
    ]
    newco = {
        "name": "Newco",
        "composite_figi": "BBG0NEWC0000",
        "tickers": [{"ticker": "NEWCO", "first_day": "2025-06-03"}],
    }
    return [aapl, msft, newco]


def test_last_updated_utc_says_when_the_world_changed_a_row(sim: SimulatorServer, client) -> None:
    newest_first = {"market": "stocks", "sort": "last_updated_utc", "order": "desc"}
    sim.configure(listings=world(), stock_universe_size=30, today=dt.date(2025, 6, 2))
    before = get(client, TICKERS, **newest_first, limit=1000)["results"]
    stamps = [r["last_updated_utc"] for r in before]
    assert stamps == sorted(stamps, reverse=True) and len(set(stamps)) == len(stamps)
    # Meta's new ticker (2022-06-09) is the newest change of the identity world's listed rows.
    assert before[0]["ticker"] == "META" and stamps[0].startswith("2022-06-09T")
    # The next day the world changes: only the changed rows are newer than yesterday's newest.
    sim.configure(listings=world() + day_two_changes(), today=dt.date(2025, 6, 3))
    page = get(client, TICKERS, **newest_first, limit=2)
    assert [r["ticker"] for r in page["results"]] in (["MSFX", "NEWCO"], ["NEWCO", "MSFX"])
    assert all(r["last_updated_utc"] > stamps[0] for r in page["results"])
    third = get(client, page["next_url"])["results"][0]
    assert third["last_updated_utc"] == stamps[0]  # unchanged rows keep their stamps
    gone = get(client, TICKERS, market="stocks", active="false", sort="delisted_utc", order="desc")
    latest = gone["results"][:3]
    assert sorted(r["ticker"] for r in latest[:2]) == ["AAPL", "MSFT"]
    assert {r["delisted_utc"] for r in latest[:2]} == {"2025-06-03T04:00:00Z"}
    assert latest[2]["ticker"] == "SIVB" and all(
        r["last_updated_utc"] > stamps[0] for r in latest[:2]
    )
    oldest_first = get(client, TICKERS, active="false", sort="delisted_utc", order="asc")["results"]
    assert oldest_first[0]["ticker"] == "ZZQX"  # delisted after 2021-06-30, the earliest
