"""The simulator answers like the real API where the real API is less kind than a stub would be."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import httpx

from polygon_simulator import SimulatorServer
from polygon_simulator.faults import NOT_AUTHORIZED_MESSAGE
from polygon_simulator.server import banner

STOCKS = "/v2/aggs/grouped/locale/us/market/stocks/"
CRYPTO = "/v2/aggs/grouped/locale/global/market/crypto/"


def range_path(ticker: str, start: str, end: str) -> str:
    return f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"


def ny_ms(day: str, hour: int) -> int:
    """Unix ms of `hour`:00 New York on `day`."""
    from zoneinfo import ZoneInfo

    local = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(hour))
    return int(local.replace(tzinfo=ZoneInfo("America/New_York")).timestamp()) * 1000


def test_to_before_from_is_a_400(client: httpx.Client) -> None:
    r = client.get(range_path("AAPL", "2024-07-08", "2024-07-01"))
    assert r.status_code == 400
    body = r.json()
    assert body["status"] == "ERROR" and "'to' must not be before 'from'" in body["error"]


def test_future_dates_are_403_not_authorized(sim: SimulatorServer, client: httpx.Client) -> None:
    # SIM_TODAY is 2025-06-02: asking through tomorrow is asking for the future.
    for path in (range_path("AAPL", "2025-05-01", "2025-06-03"), STOCKS + "2025-06-03"):
        r = client.get(path)
        assert r.status_code == 403
        assert r.json()["status"] == "NOT_AUTHORIZED"
        assert r.json()["message"] == NOT_AUTHORIZED_MESSAGE
    assert client.get(range_path("AAPL", "2025-05-01", "2025-06-02")).status_code == 200
    sim.configure(refuse_future=False)
    assert client.get(range_path("AAPL", "2025-05-01", "2025-06-03")).status_code == 200


def test_dates_before_the_plan_window_are_403(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.configure(history_start=dt.date(2023, 6, 2))
    for path in (
        range_path("AAPL", "2023-06-01", "2023-06-30"),
        range_path("X:BTCUSD", "2020-01-01", "2024-01-01"),
        STOCKS + "2023-06-01",
        CRYPTO + "2023-06-01",
    ):
        r = client.get(path)
        assert r.status_code == 403 and "doesn't include this data timeframe" in r.text
    assert client.get(range_path("AAPL", "2023-06-02", "2023-06-30")).json()["resultsCount"] == 20
    assert client.get(STOCKS + "2023-06-02").status_code == 200
    assert sim.stats()["by_status"] == {"403": 4, "200": 2}


def test_unknown_tickers_answer_an_empty_200_and_case_matters(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    week = ("2024-07-01", "2024-07-08")
    assert client.get(range_path("KIMpL", *week)).json()["resultsCount"] == 5
    for unknown in ("KIMPL", "Aapl", "QQQQQQ", "X:NOPEUSD"):
        r = client.get(range_path(unknown, *week))
        assert r.status_code == 200
        body = r.json()
        assert body["resultsCount"] == 0 and "results" not in body and body["ticker"] == unknown
    grouped = [bar["T"] for bar in client.get(STOCKS + "2024-07-03").json()["results"]]
    assert "KIMpL" in grouped and "KIMPL" not in grouped
    sim.configure(extra_stock_tickers=["QQQQQQ"])
    assert client.get(range_path("QQQQQQ", *week)).json()["resultsCount"] == 5


def test_stock_volume_is_whole_numbers_and_crypto_fractional(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    stock = client.get(range_path("AAPL", "2024-07-01", "2024-07-08"))
    assert all(isinstance(bar["v"], int) for bar in stock.json()["results"])
    assert '"v":' in stock.text and '.0,"vw"' not in stock.text
    grouped = client.get(STOCKS + "2024-07-03").json()["results"]
    assert all(isinstance(bar["v"], int) for bar in grouped)
    crypto = client.get(range_path("X:BTCUSD", "2024-07-01", "2024-07-08")).json()["results"]
    assert all(isinstance(bar["v"], float) for bar in crypto)
    assert any(not bar["v"].is_integer() for bar in crypto)
    sim.configure(integer_stock_volume=False)
    floats = client.get(range_path("AAPL", "2024-07-01", "2024-07-08")).json()["results"]
    assert [float(bar["v"]) for bar in floats] == [bar["v"] for bar in stock.json()["results"]]
    assert all(isinstance(bar["v"], float) for bar in floats)


def test_older_range_history_is_stamped_at_the_close(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    before = client.get(range_path("AAPL", "2024-02-29", "2024-03-05")).json()["results"]
    sim.configure(stock_close_stamp_before=dt.date(2024, 3, 4))
    after = client.get(range_path("AAPL", "2024-02-29", "2024-03-05")).json()["results"]
    assert [bar["t"] for bar in after] == [
        ny_ms("2024-02-29", 16),
        ny_ms("2024-03-01", 16),
        ny_ms("2024-03-04", 0),  # from the switch day on: New York midnight again
        ny_ms("2024-03-05", 0),
    ]
    strip = [{k: v for k, v in bar.items() if k != "t"} for bar in before]
    assert [{k: v for k, v in bar.items() if k != "t"} for bar in after] == strip
    # Paging across the switch keeps the days: the next_url `from` is a close stamp.
    paged = client.get(range_path("AAPL", "2024-02-29", "2024-03-05"), params={"limit": 1}).json()
    assert f"/range/1/day/{ny_ms('2024-03-01', 16)}/2024-03-05?" in paged["next_url"]


def test_2020_era_crypto_is_stamped_at_new_york_midnight(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    sim.configure(crypto_ny_midnight_before=dt.date(2020, 11, 3))
    bars = client.get(range_path("X:BTCUSD", "2020-10-31", "2020-11-03")).json()["results"]
    # EDT until 2020-11-01 (04:00Z), EST after (05:00Z), 00:00Z from the switch day on.
    assert [bar["t"] for bar in bars] == [
        ny_ms("2020-10-31", 0),
        ny_ms("2020-11-01", 0),
        ny_ms("2020-11-02", 0),
        int(dt.datetime(2020, 11, 3, tzinfo=dt.UTC).timestamp()) * 1000,
    ]
    assert bars[0]["t"] % 86_400_000 == 4 * 3_600_000
    assert bars[2]["t"] % 86_400_000 == 5 * 3_600_000
    grouped = client.get(CRYPTO + "2020-11-02").json()["results"]
    assert {bar["t"] for bar in grouped} == {ny_ms("2020-11-02", 0)}


def test_gzip_when_the_client_accepts_it(sim: SimulatorServer) -> None:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    url = sim.base_url + range_path("AAPL", "2024-01-01", "2024-06-30")
    with httpx.Client(headers=headers) as client:
        # Read the raw bytes: httpx would otherwise decompress them transparently.
        with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == "gzip"
            assert r.headers["x-simulated"] == "true"
        body = json.loads(gzip.decompress(raw))
        assert body["resultsCount"] == 124 and len(raw) < len(json.dumps(body)) / 2
        plain = client.get(url, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.json() == body | {
            "request_id": plain.json()["request_id"]
        }
        sim.configure(gzip=False)
        with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as r:
            assert "content-encoding" not in r.headers


def test_the_simulated_data_notice_stays_loud(client: httpx.Client) -> None:
    assert client.get(STOCKS + "2024-07-03").headers["x-simulated"] == "true"
    assert client.get("/_sim/health").json()["simulated"] is True
    assert "ALL DATA IS SIMULATED" in banner("http://127.0.0.1:1", "k")


def test_every_answer_says_it_is_simulated_unless_told_to_pose_as_polygon(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    """The header a client tells the simulator by: on every answer (data, errors, faults,
    control routes), and on none once `identify` is off (a stand-in for a keyed vendor)."""
    paths = [STOCKS + "2024-07-03", range_path("AAPL", "2024-07-08", "2024-07-01"), "/nope"]
    sim.add_fault(kind="status", status_code=503, body="html", times=1, ticker="MSFT")
    paths.append(range_path("MSFT", "2024-07-01", "2024-07-08"))
    answers = [client.get(path) for path in paths] + [client.get("/_sim/health")]
    assert [r.status_code for r in answers] == [200, 400, 404, 503, 200]
    assert all(r.headers["x-simulated"] == "true" for r in answers)
    unauthorised = httpx.get(sim.base_url + STOCKS + "2024-07-03")
    assert unauthorised.status_code == 401 and unauthorised.headers["x-simulated"] == "true"

    sim.configure(identify=False)
    posing = [client.get(path) for path in paths[:3]] + [client.get("/_sim/health")]
    assert [r.status_code for r in posing] == [200, 400, 404, 200]
    assert not any("x-simulated" in r.headers for r in posing)
    # The body is the vendor's shape either way: only the header tells them apart.
    assert posing[0].json().keys() == answers[0].json().keys()
