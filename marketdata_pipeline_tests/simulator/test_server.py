"""The simulator over real HTTP: shapes, calendars, pagination, auth, faults, limits, control."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from polygon_simulator import SimulatorServer, market

FIXTURES = Path(__file__).parent.parent / "fixtures" / "polygon"
RANGE_MOCK = "v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json"
GROUPED_MOCK = "v2_aggs_grouped_locale_us_market_stocks_2005-04-04__adjusted=true.json"
OHLCV = ("o", "h", "l", "c", "v", "vw", "n")


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def range_path(ticker: str, start: str, end: str) -> str:
    return f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"


STOCKS = "/v2/aggs/grouped/locale/us/market/stocks/"
CRYPTO = "/v2/aggs/grouped/locale/global/market/crypto/"
A_RANGE = range_path("AAPL", "2024-07-01", "2024-07-08")  # 5 sessions (07-04 closed)


# --- shapes ---------------------------------------------------------------------------------------


def test_range_response_matches_the_real_shape(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.configure(integer_stock_volume=False)  # the client mocks write 95595226.0
    r = client.get(range_path("AAPL", "2005-04-01", "2005-04-04"))
    assert r.status_code == 200 and r.headers["x-simulated"] == "true"
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    mock = fixture(RANGE_MOCK)
    assert list(body) == list(mock)  # same keys, same order
    assert [list(bar) for bar in body["results"]] == [list(bar) for bar in mock["results"]]
    assert [bar["t"] for bar in body["results"]] == [1112331600000, 1112587200000]
    assert body["ticker"] == "AAPL" and body["status"] == "OK" and body["adjusted"] is True
    assert body["queryCount"] == body["resultsCount"] == body["count"] == 2
    assert len(body["request_id"]) == 32
    assert '"v":' in r.text and all(bar["v"].is_integer() for bar in body["results"])
    assert all(isinstance(bar["n"], int) for bar in body["results"])


def test_crypto_range_shape_and_fractional_volume(client: httpx.Client) -> None:
    body = client.get(range_path("X:BTCUSD", "2024-02-01", "2024-02-29")).json()
    spec = fixture("openapi_examples/crypto_range_X-BTCUSD_1_day.json")
    assert set(body) - {"count"} == set(spec)
    assert set(body["results"][0]) == set(spec["results"][0])
    assert body["ticker"] == "X:BTCUSD" and body["resultsCount"] == 29
    days = [bar["t"] // 86_400_000 for bar in body["results"]]
    assert days == list(range(days[0], days[0] + 29)) and all(
        bar["t"] % 86_400_000 == 0 for bar in body["results"]
    )
    assert any(not bar["v"].is_integer() for bar in body["results"])


def test_grouped_shape_matches_the_mock(client: httpx.Client) -> None:
    body = client.get(STOCKS + "2024-07-03").json()
    mock = fixture(GROUPED_MOCK)
    assert list(body) == list(mock)
    assert list(body["results"][0]) == list(mock["results"][0])
    assert body["resultsCount"] == body["count"] == len(body["results"]) == 2000
    crypto = client.get(CRYPTO + "2024-07-04", params={"adjusted": "false"}).json()
    assert crypto["adjusted"] is False and crypto["resultsCount"] == 200
    assert {bar["T"] for bar in crypto["results"]} >= {"X:BTCUSD", "X:ETHGBP"}
    assert all(bar["t"] == 1720051200000 for bar in crypto["results"])  # 2024-07-04 00:00Z


def test_grouped_and_range_agree(client: httpx.Client) -> None:
    for ticker, day, shift in (
        ("AAPL", "2024-07-03", 16 * 3_600_000),
        ("X:BTCUSD", "2024-07-04", 0),
    ):
        path = (CRYPTO if market.is_crypto(ticker) else STOCKS) + day
        grouped = {bar["T"]: bar for bar in client.get(path).json()["results"]}[ticker]
        (ranged,) = client.get(range_path(ticker, day, day)).json()["results"]
        assert {k: grouped[k] for k in OHLCV} == {k: ranged[k] for k in OHLCV}
        assert grouped["t"] - ranged["t"] == shift  # grouped stocks: 16:00 ET close


def test_ms_timestamps_are_accepted_and_snapped_to_the_day(client: httpx.Client) -> None:
    by_date = client.get(range_path("AAPL", "2005-04-01", "2005-04-04")).json()
    # 2005-04-01 12:00 UTC and 2005-04-04 20:00 UTC: New York days 04-01 and 04-04.
    by_ms = client.get(range_path("AAPL", "1112356800000", "1112644800000")).json()
    assert by_ms["results"] == by_date["results"]


# --- calendars and empty answers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [("2024-07-04", "2024-07-04"), ("2024-07-06", "2024-07-07"), ("2012-10-29", "2012-10-30")],
)
def test_closed_days_give_ok_without_results(client: httpx.Client, start: str, end: str) -> None:
    body = client.get(range_path("AAPL", start, end)).json()
    assert body["status"] == "OK" and body["resultsCount"] == 0 and "results" not in body


def test_grouped_holiday_and_weekend_are_empty(client: httpx.Client) -> None:
    for day in ("2024-07-04", "2024-07-06", "2001-09-12"):
        body = client.get(STOCKS + day).json()
        assert body["resultsCount"] == 0 and "results" not in body
    assert client.get(CRYPTO + "2024-07-06").json()["resultsCount"] == 200


def test_no_bars_from_today_on(sim: SimulatorServer, client: httpx.Client) -> None:
    # Asking past today answers 403 by default, like the real API; this test is about today.
    sim.configure(today=dt.date(2024, 7, 5), refuse_future=False)
    body = client.get(A_RANGE).json()
    assert [bar["t"] for bar in body["results"]] == [
        1719806400000,  # 07-01
        1719892800000,  # 07-02
        1719979200000,  # 07-03; 07-04 holiday; 07-05 is "today"
    ]
    assert "results" not in client.get(STOCKS + "2024-07-05").json()
    assert "results" not in client.get(CRYPTO + "2024-07-05").json()


def test_any_valid_ticker_is_served(sim: SimulatorServer, client: httpx.Client) -> None:
    # The simulator serves its universe plus the configured extras (unknown: empty 200).
    sim.configure(extra_stock_tickers=["ZZZQ"], extra_crypto_tickers=["NEWUSD"])
    assert client.get(range_path("ZZZQ", "2024-07-01", "2024-07-08")).json()["resultsCount"] == 5
    assert client.get(range_path("X:NEWUSD", "2024-07-01", "2024-07-08")).json()["count"] == 8
    unknown = client.get(range_path("aapl", "2024-07-01", "2024-07-08"))
    assert unknown.status_code == 200 and unknown.json()["resultsCount"] == 0


def test_sort_desc_and_adjusted_echo(client: httpx.Client) -> None:
    asc = client.get(A_RANGE).json()["results"]
    desc = client.get(A_RANGE, params={"sort": "desc", "adjusted": "false"}).json()
    assert desc["results"] == asc[::-1] and desc["adjusted"] is False


# --- pagination -----------------------------------------------------------------------------------


def _follow(client: httpx.Client, first: httpx.Response) -> list[dict]:
    pages = [first.json()]
    while "next_url" in pages[-1]:
        assert len(pages) < 10
        pages.append(client.get(pages[-1]["next_url"]).json())
    return pages


def test_pagination_chains_next_urls(sim: SimulatorServer, client: httpx.Client) -> None:
    pages = _follow(client, client.get(A_RANGE, params={"limit": 2, "adjusted": "false"}))
    assert [p["resultsCount"] for p in pages] == [2, 2, 1]
    assert [p["count"] for p in pages] == [2, 2, 1]
    union = [bar for p in pages for bar in p["results"]]
    assert union == client.get(A_RANGE).json()["results"]
    first = urlsplit(pages[0]["next_url"])
    assert f"{first.scheme}://{first.netloc}" == sim.base_url  # absolute, from our own host
    assert first.path == range_path("AAPL", "1719979200000", "2024-07-08")  # from = next bar's t
    cursor = parse_qs(first.query)["cursor"][0]
    decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    assert parse_qs(decoded) == {"limit": ["2"], "sort": ["asc"], "adjusted": ["false"]}
    assert all(p["adjusted"] is False for p in pages)  # adjusted survives via the cursor
    assert "apiKey" not in pages[0]["next_url"]


def test_pagination_desc(client: httpx.Client) -> None:
    pages = _follow(client, client.get(A_RANGE, params={"limit": 2, "sort": "desc"}))
    union = [bar for p in pages for bar in p["results"]]
    assert union == client.get(A_RANGE).json()["results"][::-1]


def test_limit_beyond_the_range_has_no_next_url(client: httpx.Client) -> None:
    body = client.get(A_RANGE, params={"limit": 5}).json()
    assert body["resultsCount"] == 5 and "next_url" not in body


# --- bad requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        (
            range_path("AAPL", "yesterday", "2024-07-08"),
            {},
            "Could not parse the time parameter: 'from'. Use YYYY-MM-DD or Unix MS Timestamps",
        ),
        (
            range_path("AAPL", "2024-07-01", "2024-13-45"),
            {},
            "Could not parse the time parameter: 'to'. Use YYYY-MM-DD or Unix MS Timestamps",
        ),
        ("/v2/aggs/ticker/AAPL/range/1/minute/2024-07-01/2024-07-08", {}, None),
        ("/v2/aggs/ticker/AAPL/range/5/day/2024-07-01/2024-07-08", {}, None),
        (A_RANGE, {"limit": "0"}, None),
        (A_RANGE, {"limit": "many"}, None),
        (A_RANGE, {"sort": "up"}, None),
        (A_RANGE, {"adjusted": "maybe"}, None),
        (A_RANGE, {"cursor": "!!not-a-cursor!!"}, None),
        (A_RANGE, {"cursor": base64.urlsafe_b64encode(b"limit=x").decode()}, None),
        (STOCKS + "20240703", {}, None),
    ],
)
def test_bad_parameters_give_400(
    client: httpx.Client, path: str, params: dict, message: str | None
) -> None:
    r = client.get(path, params=params)
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "ERROR" and set(body) == {"status", "request_id", "error"}
    if message:
        assert body["error"] == message


def test_limit_above_50000_is_capped_not_refused(client: httpx.Client) -> None:
    r = client.get(range_path("X:BTCUSD", "1990-01-01", "2025-01-01"), params={"limit": 99999})
    expected = len(market.bar_days("X:BTCUSD", dt.date(1990, 1, 1), dt.date(2025, 1, 1)))
    assert r.status_code == 200 and r.json()["resultsCount"] == expected > 12_000


# --- auth -----------------------------------------------------------------------------------------


def test_auth(sim: SimulatorServer) -> None:
    url = sim.base_url + A_RANGE
    missing = httpx.get(url)
    assert missing.status_code == 401 and missing.headers["x-simulated"] == "true"
    assert missing.json()["error"] == "API Key was not provided"
    assert set(missing.json()) == {"status", "request_id", "error"}
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "Unknown API Key"
    assert httpx.get(url, params={"apiKey": "nope"}).json()["error"] == "Unknown API Key"
    assert httpx.get(url, params={"apiKey": sim.api_key}).status_code == 200
    assert httpx.get(url, headers={"Authorization": f"Bearer {sim.api_key}"}).status_code == 200
    log = sim.stats()["log"]
    assert [e["api_key_in_query"] for e in log] == [False, False, True, True, False]
    assert [e["status"] for e in log] == [401, 401, 401, 200, 200]
    assert all("nope" not in e["query"] and sim.api_key not in e["query"] for e in log)


def test_custom_api_key() -> None:
    with SimulatorServer(api_key="other-key") as other:
        url = other.base_url + A_RANGE
        assert httpx.get(url, headers={"Authorization": "Bearer other-key"}).status_code == 200
        assert httpx.get(url, headers={"Authorization": "Bearer simulator-key"}).status_code == 401
    with pytest.raises(RuntimeError):
        _ = other.base_url


# --- faults ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "body", "shape"),
    [
        (429, "json", {"status": "ERROR", "error": "You've exceeded"}),
        (400, "json", {"status": "ERROR", "error": "Could not parse"}),
        (401, "json", {"status": "ERROR", "error": "Unknown API Key"}),
        (403, "json", {"status": "NOT_AUTHORIZED", "message": "Your plan doesn't include"}),
        (500, "json", {"status": "ERROR", "error": "Internal Server Error"}),
        (502, "html", None),
        (503, "html", None),
        (504, "html", None),
    ],
)
def test_status_fault(
    sim: SimulatorServer, client: httpx.Client, status_code: int, body: str, shape: dict | None
) -> None:
    sim.add_fault(kind="status", status_code=status_code, body=body, times=2, retry_after=7)
    for _ in range(2):
        r = client.get(A_RANGE)
        assert r.status_code == status_code and r.headers["retry-after"] == "7"
        assert r.headers["x-simulated"] == "true"
        if shape is None:
            assert r.headers["content-type"].startswith("text/html")
            assert f"<title>{status_code} " in r.text and "nginx" in r.text
        else:
            payload = r.json()
            assert payload["status"] == shape["status"] and payload["request_id"]
            key = "message" if "message" in shape else "error"
            assert payload[key].startswith(shape[key])
    assert client.get(A_RANGE).status_code == 200
    assert sim.stats()["by_status"] == {str(status_code): 2, "200": 1}


def test_status_fault_custom_message_and_no_retry_after(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.add_fault(kind="status", status_code=429, message="slow down", times=1)
    r = client.get(A_RANGE)
    assert r.json()["error"] == "slow down" and "retry-after" not in r.headers


def test_delay_fault(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.add_fault(kind="delay", seconds=0.5, times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get(A_RANGE, timeout=0.1)
    started = time.perf_counter()
    assert client.get(A_RANGE).status_code == 200
    assert time.perf_counter() - started < 0.4


def test_delay_fault_then_normal_answer(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.add_fault(kind="delay", seconds=0.2, times=1)
    started = time.perf_counter()
    r = client.get(A_RANGE)
    assert r.status_code == 200 and r.json()["resultsCount"] == 5
    assert time.perf_counter() - started >= 0.2


def test_truncated_and_invalid_json(sim: SimulatorServer, client: httpx.Client) -> None:
    full = client.get(A_RANGE).text
    sim.add_fault(kind="truncated_json", times=1)
    sim.add_fault(kind="invalid_json", times=1)
    sim.add_fault(kind="invalid_json", body="html", times=1)
    truncated = client.get(A_RANGE)
    assert truncated.status_code == 200 and full.startswith(truncated.text[:200])
    assert 0 < len(truncated.text) < len(full)
    invalid = client.get(A_RANGE)
    html = client.get(A_RANGE)
    for r in (truncated, invalid, html):
        with pytest.raises(json.JSONDecodeError):
            r.json()
    assert html.text.startswith("<html>") and html.headers["content-type"].startswith("text/html")
    assert client.get(A_RANGE).json()["resultsCount"] == 5


def test_reset_fault_drops_the_connection(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.add_fault(kind="reset", times=2)
    for _ in range(2):
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(A_RANGE)
    assert client.get(A_RANGE).status_code == 200
    assert sim.stats()["by_fault"] == {"reset": 2}


def test_body_faults(sim: SimulatorServer, client: httpx.Client) -> None:
    normal = client.get(A_RANGE).json()
    sim.add_fault(kind="delayed_status", times=1)
    sim.add_fault(kind="results_count_mismatch", times=1)
    delayed = client.get(A_RANGE).json()
    assert delayed["status"] == "DELAYED" and delayed["results"] == normal["results"]
    mismatch = client.get(A_RANGE).json()
    assert mismatch["resultsCount"] == mismatch["count"] == len(mismatch["results"]) + 1
    assert client.get(A_RANGE).json()["status"] == "OK"


def test_next_url_loop(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.add_fault(kind="next_url_loop", times=3)
    first = client.get(A_RANGE, params={"limit": 50}).json()
    url = first["next_url"]
    assert url.startswith(sim.base_url + A_RANGE + "?cursor=")
    second = client.get(url).json()
    third = client.get(url).json()
    assert second["next_url"] == third["next_url"] == url
    assert second["results"] == first["results"]
    assert "next_url" not in client.get(url).json()  # exhausted: the normal single page


def test_bad_bars(sim: SimulatorServer, client: httpx.Client) -> None:
    normal = client.get(A_RANGE).json()["results"]
    sim.add_fault(
        kind="bad_bars", corrupt=["high_below_low", "negative_volume", "duplicate_day"], times=1
    )
    body = client.get(A_RANGE).json()
    bars = body["results"]
    assert bars[0]["h"] < bars[0]["l"] and bars[1]["v"] < 0
    assert bars[2] == bars[3] == normal[2] and len(bars) == 6
    assert body["resultsCount"] == body["count"] == 6
    sim.add_fault(kind="bad_bars", corrupt=["nan_price", "null_field", "string_field"], times=1)
    bars = client.get(A_RANGE).json()["results"]
    assert bars[0]["c"] == "NaN" and bars[1]["c"] is None and isinstance(bars[2]["c"], str)
    sim.add_fault(kind="bad_bars", corrupt=["zero_price", "misaligned_t"], times=1)
    bars = client.get(A_RANGE).json()["results"]
    assert bars[0]["o"] == 0 and bars[1]["t"] % 3_600_000 == 0 and bars[1]["t"] != normal[1]["t"]
    assert client.get(A_RANGE).json()["results"] == normal


def test_fault_matching_by_ticker_and_path(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.add_fault(kind="status", status_code=503, ticker="AAPL")
    sim.add_fault(kind="status", status_code=502, match_path="/market/crypto/")
    assert client.get(A_RANGE).status_code == 503
    assert client.get(range_path("MSFT", "2024-07-01", "2024-07-08")).status_code == 200
    assert client.get(STOCKS + "2024-07-03").status_code == 200  # ticker rules skip grouped
    assert client.get(CRYPTO + "2024-07-03").status_code == 502
    assert client.get(A_RANGE).status_code == 503  # times=None: until removed
    sim.clear_faults()
    assert client.get(A_RANGE).status_code == 200


def test_grouped_faults(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.add_fault(kind="delayed_status", endpoint="grouped", times=1)
    assert client.get(A_RANGE).json()["status"] == "OK"
    assert client.get(STOCKS + "2024-07-03").json()["status"] == "DELAYED"


# --- rate limit, latency, concurrency -------------------------------------------------------------


def test_rate_limit_with_retry_after(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.configure(requests_per_minute=3)
    assert [client.get(A_RANGE).status_code for _ in range(3)] == [200, 200, 200]
    r = client.get(A_RANGE)
    assert r.status_code == 429
    assert r.json()["error"] == (
        "You've exceeded the maximum requests per minute, please wait or upgrade your "
        "subscription to continue."
    )
    assert 55 <= int(r.headers["retry-after"]) <= 60
    stats = sim.stats(include_log=False)
    assert stats["requests"] == 4 and stats["by_status"] == {"200": 3, "429": 1}


def test_rate_limit_without_retry_after(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.configure(requests_per_minute=1, rate_limit_retry_after=False)
    assert client.get(A_RANGE).status_code == 200
    r = client.get(STOCKS + "2024-07-03")
    assert r.status_code == 429 and "retry-after" not in r.headers
    sim.configure(requests_per_minute=None)
    assert client.get(A_RANGE).status_code == 200


def test_latency_overlaps_concurrent_requests(sim: SimulatorServer) -> None:
    sim.configure(latency_seconds=0.3)
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    tickers = market.stock_universe(100)

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=200)
        async with httpx.AsyncClient(
            base_url=sim.base_url, headers=headers, limits=limits, timeout=30
        ) as c:
            responses = await asyncio.gather(
                *(c.get(range_path(t, "2024-06-01", "2024-06-30")) for t in tickers)
            )
            return [r.status_code for r in responses]

    started = time.perf_counter()
    statuses = asyncio.run(burst())
    elapsed = time.perf_counter() - started
    assert statuses == [200] * 100
    assert 0.3 <= elapsed < 10.0  # 100 x 0.3 s = 30 s if the requests did not overlap
    assert sim.stats(include_log=False)["by_ticker"] == dict.fromkeys(tickers, 1)


def test_in_flight_requests_do_not_leak_across_a_reset(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.add_fault(kind="delay", seconds=0.3, times=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get(A_RANGE, timeout=0.05)
    sim.reset(today=sim.state.config.today)
    time.sleep(0.4)  # the delayed request completes after the reset
    assert sim.stats()["requests"] == 0


# --- revisions and extra tickers ------------------------------------------------------------------


def test_revision_changes_recent_bars(sim: SimulatorServer, client: httpx.Client) -> None:
    before = client.get(A_RANGE).json()["results"]
    sim.configure(revision=1, revision_from=dt.date(2024, 7, 3))
    after = client.get(A_RANGE).json()["results"]
    assert after[:2] == before[:2]
    assert all(
        a["c"] != b["c"] and a["t"] == b["t"] for a, b in zip(after[2:], before[2:], strict=True)
    )
    grouped = {bar["T"]: bar for bar in client.get(STOCKS + "2024-07-08").json()["results"]}
    assert {k: grouped["AAPL"][k] for k in OHLCV} == {k: after[-1][k] for k in OHLCV}


def test_extra_tickers_join_grouped(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.configure(extra_stock_tickers=["ZZZT", "AAPL"], extra_crypto_tickers=["FOOUSD"])
    stocks = [bar["T"] for bar in client.get(STOCKS + "2024-07-03").json()["results"]]
    assert len(stocks) == 2001 and stocks[-1] == "ZZZT"
    crypto = [bar["T"] for bar in client.get(CRYPTO + "2024-07-03").json()["results"]]
    assert crypto[-1] == "X:FOOUSD"


# --- counters, log and the control API ------------------------------------------------------------


def test_counters_and_log(sim: SimulatorServer, client: httpx.Client) -> None:
    before = time.time()
    client.get(A_RANGE)
    client.get(range_path("X:BTCUSD", "2024-07-01", "2024-07-02"))
    client.get(STOCKS + "2024-07-03")
    client.get("/v3/reference/exchanges")
    httpx.get(sim.base_url + "/_sim/stats")  # control calls are not counted
    stats = httpx.get(sim.base_url + "/_sim/stats").json()
    assert stats["requests"] == 4
    assert stats["by_kind"] == {"range": 2, "grouped": 1, "other": 1}
    assert stats["by_status"] == {"200": 3, "404": 1}
    assert stats["by_ticker"] == {"AAPL": 1, "X:BTCUSD": 1}
    log = stats["log"]
    assert [e["kind"] for e in log] == ["range", "range", "grouped", "other"]
    assert log[0] == {
        "t": log[0]["t"],
        "path": A_RANGE,
        "query": "",
        "kind": "range",
        "ticker": "AAPL",
        "status": 200,
        "api_key_in_query": False,
        "fault": None,
    }
    assert before <= log[0]["t"] <= log[-1]["t"] <= time.time()
    assert "log" not in httpx.get(sim.base_url + "/_sim/stats?log=false").json()


def test_control_api(sim: SimulatorServer, client: httpx.Client) -> None:
    base = sim.base_url + "/_sim"
    added = httpx.post(
        base + "/faults",
        json=[{"kind": "status", "status_code": 503, "times": 1}, {"kind": "reset", "times": 0}],
    )
    assert added.status_code == 200 and len(added.json()["ids"]) == 2
    single = httpx.post(base + "/faults", json={"kind": "delayed_status", "times": 1}).json()
    assert len(single["ids"]) == 1
    assert client.get(A_RANGE).status_code == 503
    listed = httpx.get(base + "/faults").json()
    assert [(f["kind"], f["fired"], f["remaining"]) for f in listed] == [
        ("status", 1, 0),
        ("reset", 0, 0),
        ("delayed_status", 0, 1),
    ]
    assert httpx.delete(f"{base}/faults/{listed[2]['id']}").status_code == 200
    assert client.get(A_RANGE).json()["status"] == "OK"
    assert httpx.post(base + "/faults", json={"kind": "nope"}).status_code == 400
    assert (
        httpx.delete(base + "/faults").status_code == 200
        and httpx.get(base + "/faults").json() == []
    )

    config = httpx.post(
        base + "/config", json={"requests_per_minute": 5, "revision_from": "2024-07-03"}
    )
    assert config.status_code == 200
    assert (
        config.json()["requests_per_minute"] == 5 and config.json()["revision_from"] == "2024-07-03"
    )
    assert sim.state.config.requests_per_minute == 5
    assert httpx.post(base + "/config", json={"requests_per_minute": -1}).status_code == 400
    assert httpx.post(base + "/config", json={"api_key": "x"}).status_code == 400
    assert httpx.post(base + "/config", json={"bogus": 1}).status_code == 400
    assert httpx.get(base + "/config").json()["requests_per_minute"] == 5

    sim.add_fault(kind="reset")
    reset = httpx.post(base + "/reset")
    assert reset.status_code == 200 and reset.json()["config"]["requests_per_minute"] == 5
    assert sim.stats()["requests"] == 0 and sim.state.faults() == []
    reset = httpx.post(
        base + "/reset", json={"reset_config": True, "config": {"today": "2025-06-02"}}
    )
    assert reset.json()["config"]["requests_per_minute"] is None
    assert httpx.get(base + "/health").json() == {"status": "OK", "simulated": True}


def test_serve_prints_a_banner_and_serves(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "from polygon_simulator import serve; "
        f"serve('127.0.0.1', {port}, 'cli-key', requests_per_minute=5, log_level='warning')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(6)]
        text = "".join(lines)
        assert "SIMULATED" in text and f"http://127.0.0.1:{port}" in text and "cli-key" in text
        deadline = time.monotonic() + 10
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}{A_RANGE}", headers={"Authorization": "Bearer cli-key"}
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert r.status_code == 200 and r.headers["x-simulated"] == "true"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
