"""The simulator's splits and dividends: real shapes, filters, cursors, bars that follow them."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from polygon_simulator import ConfigError, SimulatorServer

REFERENCE = Path(__file__).parent.parent / "fixtures" / "polygon" / "reference"
AAPL_JUNE = "/v2/aggs/ticker/AAPL/range/1/day/2024-06-03/2024-06-14"
STOCKS = "/v2/aggs/grouped/locale/us/market/stocks/"
PRICES = ("o", "h", "l", "c", "vw")
SPLITS = [
    {"ticker": "AAPL", "execution_date": "2024-06-10", "split_from": 1, "split_to": 4},
    {"ticker": "AAPL", "execution_date": "2020-08-31", "split_from": 1, "split_to": 4},
    {"ticker": "BRW", "execution_date": "2022-05-20", "split_from": 2, "split_to": 1},
    {"ticker": "CIG", "execution_date": "2022-05-02", "split_from": 3, "split_to": 4},
]
DIVIDENDS = [
    {"ticker": "AAPL", "ex_dividend_date": "2024-05-10", "cash_amount": 0.25,
     "declaration_date": "2024-05-02", "record_date": "2024-05-13", "pay_date": "2024-05-16"},
    {"ticker": "MSFT", "ex_dividend_date": "2024-05-15", "cash_amount": 0.75},
]  # fmt: skip


def sample(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


def bars(client: httpx.Client, path: str, **params) -> list[dict]:
    response = client.get(path, params=params)
    response.raise_for_status()
    return response.json().get("results", [])


def test_no_configured_split_leaves_every_bar_unchanged(sim: SimulatorServer, client) -> None:
    before = bars(client, AAPL_JUNE)
    sim.configure(dividends=DIVIDENDS)  # dividends never change bars
    assert bars(client, AAPL_JUNE) == before
    assert bars(client, AAPL_JUNE, adjusted="false") == before


def test_a_split_rescales_adjusted_history_and_steps_the_as_traded_series(
    sim: SimulatorServer, client
) -> None:
    before = bars(client, AAPL_JUNE)
    grouped_before = [b for b in bars(client, STOCKS + "2024-06-07") if b["T"] == "AAPL"]
    sim.configure(splits=SPLITS[:1])
    adjusted, raw = bars(client, AAPL_JUNE), bars(client, AAPL_JUNE, adjusted="false")
    days = [b["t"] for b in before]
    assert [b["t"] for b in adjusted] == [b["t"] for b in raw] == days
    for old, adj, as_traded in zip(before, adjusted, raw, strict=True):
        if as_traded["t"] < 1717992000000:  # 2024-06-10 00:00 New York
            # History as traded does not change; the adjusted bar is a quarter, volume x4.
            assert as_traded == old
            for field in PRICES:
                assert adj[field] == pytest.approx(old[field] / 4, rel=1e-12)
            assert adj["v"] == pytest.approx(old["v"] * 4)
        else:
            assert adj == as_traded  # no later split: adjusted is as traded
            assert as_traded["c"] == pytest.approx(old["c"] / 4, abs=1e-4)
    # Grouped daily agrees with the range endpoint, adjusted or not.
    (grouped,) = [b for b in bars(client, STOCKS + "2024-06-07") if b["T"] == "AAPL"]
    (grouped_raw,) = [
        b for b in bars(client, STOCKS + "2024-06-07", adjusted="false") if b["T"] == "AAPL"
    ]
    assert grouped_raw == grouped_before[0]
    assert grouped["c"] == adjusted[4]["c"] and grouped["v"] == adjusted[4]["v"]


def test_a_split_after_today_is_listed_but_not_applied(sim: SimulatorServer, client) -> None:
    before = bars(client, AAPL_JUNE)
    sim.configure(
        today="2024-06-08",
        refuse_future=False,  # this test asks past today on purpose: no 403 here
        splits=[{"ticker": "AAPL", "execution_date": "2024-06-10", "split_from": 1,
                 "split_to": 4}],
    )  # fmt: skip
    assert bars(client, AAPL_JUNE) == before[:5]  # bars end before today; none rescaled
    listed = client.get("/stocks/v1/splits").json()["results"]
    assert [r["execution_date"] for r in listed] == ["2024-06-10"]


def test_splits_have_the_real_v1_and_v3_shapes(sim: SimulatorServer, client) -> None:
    sim.configure(splits=SPLITS)
    v1 = client.get("/stocks/v1/splits", params={"ticker": "AAPL"}).json()
    (real_v1,) = sample("stocks_v1_splits__docs_sample.json")["results"]
    assert set(v1) == {"request_id", "results", "status"} and v1["status"] == "OK"
    assert all(set(r) == set(real_v1) for r in v1["results"])
    # Newest first by default; the older split's cumulative factor includes the later one.
    assert [(r["execution_date"], r["historical_adjustment_factor"]) for r in v1["results"]] == [
        ("2024-06-10", 0.25),
        ("2020-08-31", 0.0625),
    ]
    v3 = client.get("/v3/reference/splits", params={"reverse_split": "true"}).json()
    real_v3 = sample("v3_reference_splits__openapi_example.json")["results"][0]
    assert [set(r) for r in v3["results"]] == [set(real_v3)]
    assert v3["results"][0]["ticker"] == "BRW"
    kinds = {
        r["ticker"]: r["adjustment_type"] for r in client.get("/stocks/v1/splits").json()["results"]
    }
    assert kinds == {"AAPL": "forward_split", "BRW": "reverse_split", "CIG": "forward_split"}


def test_dividends_have_the_real_v1_and_v3_shapes(sim: SimulatorServer, client) -> None:
    sim.configure(splits=SPLITS[:1], dividends=DIVIDENDS)
    v1 = client.get("/stocks/v1/dividends", params={"ticker.any_of": "AAPL"}).json()
    (real,) = sample("stocks_v1_dividends__docs_sample.json")["results"]
    (record,) = v1["results"]
    # historical_adjustment_factor is not simulated; every other field is there.
    assert set(record) == set(real) - {"historical_adjustment_factor"}
    assert record["split_adjusted_cash_amount"] == 0.0625  # the 4-for-1 came later
    v3 = client.get("/v3/reference/dividends", params={"ex_dividend_date.gte": "2024-05-11"})
    (msft,) = v3.json()["results"]
    assert msft["ticker"] == "MSFT" and msft["dividend_type"] == "CD"


def test_date_filters_and_next_url_cursors_walk_every_record_once(
    sim: SimulatorServer, client
) -> None:
    sim.configure(splits=SPLITS)
    params = {
        "execution_date.gte": "2021-01-01",
        "execution_date.lte": "2024-12-31",
        "sort": "execution_date.asc",
        "limit": "1",
    }
    page = client.get("/stocks/v1/splits", params=params).json()
    seen = [r["ticker"] for r in page["results"]]
    while "next_url" in page:
        # The cursor carries the whole query: nothing else is sent, as the real client does.
        assert set(httpx.URL(page["next_url"]).params) == {"cursor"}
        page = client.get(page["next_url"]).json()
        seen += [r["ticker"] for r in page["results"]]
    assert seen == ["CIG", "BRW", "AAPL"]
    counts = sim.stats(include_log=False)
    assert counts["by_kind"]["splits"] == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"execution_date.gte": "2024-13-01"}, "yyyy-mm-dd"),
        ({"limit": "0"}, "limit"),
        ({"sort": "execution_date.up"}, "sort"),
        ({"splitratio": "2"}, "Unknown query parameter"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_reference_queries_are_refused_with_400(client, params, message) -> None:
    response = client.get("/stocks/v1/splits", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


@pytest.mark.parametrize(
    "splits",
    [
        [{"ticker": "X:BTCUSD", "execution_date": "2024-06-10", "split_from": 1, "split_to": 2}],
        [{"ticker": "AAPL", "execution_date": "2024-06-10", "split_from": 0, "split_to": 2}],
        [{"ticker": "AAPL", "execution_date": "2024-06-10", "split_from": 2, "split_to": 2}],
        [SPLITS[0], {**SPLITS[0], "split_to": 2}],
    ],
)
def test_invalid_split_config_is_refused(sim: SimulatorServer, splits) -> None:
    with pytest.raises(ConfigError):
        sim.configure(splits=splits)
    assert sim.state.config.splits == ()


def test_splits_can_be_configured_over_the_control_api(sim: SimulatorServer, client) -> None:
    response = httpx.post(f"{sim.base_url}/_sim/config", json={"splits": SPLITS[:1]})
    assert response.status_code == 200
    assert response.json()["splits"][0]["execution_date"] == "2024-06-10"
    assert len(client.get("/stocks/v1/splits").json()["results"]) == 1
