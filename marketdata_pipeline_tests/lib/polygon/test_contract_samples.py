"""Contract tests: every real aggregates sample, served over real HTTP, through `PolygonClient`.

A tiny `http.server` on 127.0.0.1 answers each request path with the bytes of a sample file (real
answers from the official client's mocks and the vendor's OpenAPI examples), and the project's
own client fetches, parses and normalises it. The expected values are the numbers in the files.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import polars as pl
import pytest

from marketdata_pipeline.lib.polygon.client import PolygonClient
from marketdata_pipeline.lib.polygon.errors import PolygonPayloadError
from marketdata_pipeline.lib.polygon.payload import normalise_bars
from marketdata_pipeline.lib.polygon.rate_budget import LocalRateBudget
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol

KEY = "contract-test-key"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: The real empty answer (a range with no bars): no `results` key at all.
EMPTY_PAGE = (
    b'{"ticker":"AAPL","queryCount":0,"resultsCount":0,"adjusted":true,"status":"OK",'
    b'"request_id":"e"}'
)

Serve = Callable[[dict[str, tuple[bytes, str]]], tuple[PolygonClient, list[dict]]]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start a local server for {path: (body, content type)}; yield a client on it and its log."""
    servers: list[ThreadingHTTPServer] = []
    clients: list[PolygonClient] = []

    def start(routes: dict[str, tuple[bytes, str]]) -> tuple[PolygonClient, list[dict]]:
        log: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                path = unquote(parts.path)
                log.append({"path": path, "query": parts.query, "headers": dict(self.headers)})
                body, content_type = routes.get(path, (b'{"status":"NOT_FOUND"}', "x/none"))
                self.send_response(200 if path in routes else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        client = PolygonClient(
            api_key=KEY,
            base_url=f"http://127.0.0.1:{server.server_address[1]}",
            budget=LocalRateBudget(60_000),
            max_attempts=2,
            backoff_initial_seconds=0.01,
            backoff_max_seconds=0.02,
        )
        clients.append(client)
        return client, log

    yield start
    for client in clients:
        client.close()
    for server in servers:
        server.shutdown()
        server.server_close()


def sample(fixtures_dir: Path, name: str, content_type: str = "application/json"):
    """(bytes, content type) of one sample file."""
    return (fixtures_dir / name).read_bytes(), content_type


def bars_of(frame: pl.DataFrame) -> list[tuple]:
    """(symbol, day, o, h, l, c, v, vw, n, vendor_t) per row."""
    return frame.select(
        "symbol",
        "day",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "vwap",
        "transactions",
        "vendor_t",
    ).rows()


@pytest.mark.parametrize("start", ["2005-04-01", "2005-04-02"])
def test_range_mocks_parse_to_new_york_days(serve, fixtures_dir, start):
    path = f"/v2/aggs/ticker/AAPL/range/1/day/{start}/2005-04-04"
    name = f"v2_aggs_ticker_AAPL_range_1_day_{start}_2005-04-04.json"
    client, log = serve({path: sample(fixtures_dir, name)})
    frame = client.fetch_range(
        parse_symbol("AAPL"), dt.date.fromisoformat(start), dt.date(2005, 4, 4)
    )
    assert bars_of(frame) == [
        ("AAPL", dt.date(2005, 4, 1), 1.5032, 1.5064, 1.4489, 1.4604, 642646396.0, 1.469, 82132,
         1112331600000),
        ("AAPL", dt.date(2005, 4, 4), 1.4639, 1.4754, 1.4343, 1.4675, 578172308.0, 1.4589, 65543,
         1112587200000),
    ]  # fmt: skip
    assert frame.get_column("t_aligned").all()
    assert frame.get_column("ts").to_list() == [
        dt.datetime(2005, 4, 1, 5, tzinfo=dt.UTC),  # 00:00 EST
        dt.datetime(2005, 4, 4, 4, tzinfo=dt.UTC),  # 00:00 EDT
    ]
    (request,) = log
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert "gzip" in request["headers"]["Accept-Encoding"]
    assert "adjusted=true" in request["query"] and KEY not in request["query"]


def test_grouped_stocks_mock_parses_with_the_close_stamp(serve, fixtures_dir):
    path = "/v2/aggs/grouped/locale/us/market/stocks/2005-04-04"
    name = "v2_aggs_grouped_locale_us_market_stocks_2005-04-04__adjusted=true.json"
    client, _ = serve({path: sample(fixtures_dir, name)})
    frame = client.fetch_grouped(AssetClass.STOCK, dt.date(2005, 4, 4))
    # The mock's t (2020-10-14 20:00Z, 16:00 New York) disagrees with its file name; the day
    # comes from t, as it does for every bar.
    assert bars_of(frame) == [
        ("GIK", dt.date(2020, 10, 14), 9.99, 10.02, 9.9, 10.02, 895345.0, 9.9979, 96,
         1602705600000)
    ]  # fmt: skip


def test_grouped_stocks_example_keeps_the_case_of_kimpl(serve, fixtures_dir):
    path = "/v2/aggs/grouped/locale/us/market/stocks/2020-10-14"
    client, _ = serve({path: sample(fixtures_dir, "openapi_examples/stocks_grouped_daily.json")})
    frame = client.fetch_grouped(AssetClass.STOCK, dt.date(2020, 10, 14))
    assert bars_of(frame) == [
        ("KIMpL", dt.date(2020, 10, 14), 26.07, 26.25, 25.91, 25.9102, 4369.0, 26.0407, 74,
         1602705600000),
        ("TANH", dt.date(2020, 10, 14), 24.5, 24.763, 22.65, 23.4, 25933.6, 23.493, 1096,
         1602705600000),
        ("VSAT", dt.date(2020, 10, 14), 34.9, 35.47, 34.21, 34.24, 312583.0, 34.4736, 4966,
         1602705600000),
    ]  # fmt: skip
    # The grouped filter keeps the vendor's ticker: `KIMpL` typed or tracked matches it.
    wanted = [parse_symbol("KIMpL").symbol]
    assert frame.filter(pl.col("symbol").is_in(wanted)).height == 1


def test_grouped_crypto_example_strips_the_prefix(serve, fixtures_dir):
    path = "/v2/aggs/grouped/locale/global/market/crypto/2020-02-02"
    client, _ = serve({path: sample(fixtures_dir, "openapi_examples/crypto_grouped_daily.json")})
    frame = client.fetch_grouped(AssetClass.CRYPTO, dt.date(2020, 2, 2))
    assert bars_of(frame) == [
        ("ARDRUSD", dt.date(2020, 2, 2), 0.0550762, 0.0550762, 0.0550762, 0.0550762, 2.0, 0.0551,
         18388, 1580676480000),
        ("NGCUSD", dt.date(2020, 2, 2), 0.0273733, 0.0273733, 0.0272983, 0.0272983, 4734.0,
         0.0273, 18, 1580674080000),
        ("ZSCUSD", dt.date(2020, 2, 2), 0.00028531, 0.00028531, 0.00028531, 0.00028531, 390.0,
         0.0003, 151, 1580671080000),
    ]  # fmt: skip


def test_crypto_range_example_at_new_york_midnight_keeps_its_days(serve, fixtures_dir):
    path = "/v2/aggs/ticker/X:BTCUSD/range/1/day/2020-06-01/2020-06-02"
    name = "openapi_examples/crypto_range_X-BTCUSD_1_day.json"
    client, log = serve({path: sample(fixtures_dir, name)})
    frame = client.fetch_range(parse_symbol("X:BTCUSD"), dt.date(2020, 6, 1), dt.date(2020, 6, 2))
    # 2020-era crypto bars are stamped 04:00Z (New York midnight): placed on their UTC dates.
    assert bars_of(frame) == [
        ("BTCUSD", dt.date(2020, 6, 1), 9557.9, 10429.26, 9490.0, 10094.75, 303067.6562332156,
         9874.5529, 1, 1590984000000),
        ("BTCUSD", dt.date(2020, 6, 2), 10096.87, 10222.72, 9135.68, 9492.62, 323339.6922892879,
         9729.5701, 1, 1591070400000),
    ]  # fmt: skip
    assert frame.get_column("t_aligned").all()
    assert frame.get_column("ts").to_list() == [
        dt.datetime(2020, 6, 1, tzinfo=dt.UTC),
        dt.datetime(2020, 6, 2, tzinfo=dt.UTC),
    ]
    assert log[0]["path"] == path


@pytest.mark.parametrize(
    ("name", "asset_class", "expected"),
    [
        (
            "v2_aggs_ticker_AAPL_prev.json",
            AssetClass.STOCK,
            # 1651003200000 = 2022-04-26 20:00Z = 16:00 New York.
            ("AAPL", dt.date(2022, 4, 26), 162.25, 162.34, 156.72, 156.8, 95595226.0, 158.6074,
             899965, 1651003200000),
        ),
        (
            "openapi_examples/stocks_prev_AAPL.json",
            AssetClass.STOCK,
            # 1605042000000 = 2020-11-10 21:00Z = 16:00 New York (EST).
            ("AAPL", dt.date(2020, 11, 10), 115.55, 117.59, 114.13, 115.97, 131704427.0,
             116.3058, None, 1605042000000),
        ),
        (
            "openapi_examples/crypto_prev_X-BTCUSD.json",
            AssetClass.CRYPTO,
            # 1605416400000 = 2020-11-15 05:00Z = New York midnight (EST): 2020-era crypto.
            ("BTCUSD", dt.date(2020, 11, 15), 15937.1, 16180.0, 15639.2, 16035.9, 95045.16897951,
             15954.2111, None, 1605416400000),
        ),
    ],
)  # fmt: skip
def test_prev_samples_parse_through_the_client(serve, fixtures_dir, name, asset_class, expected):
    ticker = "X:BTCUSD" if asset_class is AssetClass.CRYPTO else "AAPL"
    path = f"/v2/aggs/ticker/{ticker}/prev"
    client, _ = serve({path: sample(fixtures_dir, name)})
    page = client.get_page(path, {"adjusted": "true"}, kind="range", what=f"{ticker} prev")
    frame = normalise_bars(
        page.bars,
        asset_class=asset_class,
        endpoint="grouped",  # /prev bars carry their ticker in `T`, like grouped ones
        fetched_at=NOW,
        source="polygon:prev",
    )
    assert bars_of(frame) == [expected]


def test_range_example_with_next_url_is_followed_on_our_own_host(serve, fixtures_dir):
    first = "/v2/aggs/ticker/AAPL/range/1/day/2020-01-02/2020-01-10"
    second = "/v2/aggs/ticker/AAPL/range/1/day/1578114000000/2020-01-10"
    name = "openapi_examples/stocks_range_AAPL_1_day_with_next_url.json"
    client, log = serve(
        {first: sample(fixtures_dir, name), second: (EMPTY_PAGE, "application/json")}
    )
    frame = client.fetch_range(parse_symbol("AAPL"), dt.date(2020, 1, 2), dt.date(2020, 1, 10))
    assert bars_of(frame) == [
        ("AAPL", dt.date(2020, 1, 2), 74.06, 75.15, 73.7975, 75.0875, 135647456.0, 74.6099, 1,
         1577941200000),
        ("AAPL", dt.date(2020, 1, 3), 74.2875, 75.145, 74.125, 74.3575, 146535512.0, 74.7026, 1,
         1578027600000),
    ]  # fmt: skip
    # next_url names api.massive.com: only its path and cursor were used, on our own server.
    assert [entry["path"] for entry in log] == [first, second]
    assert log[1]["query"] == "cursor=bGltaXQ9MiZzb3J0PWFzYw"


def test_csv_range_example_is_refused_as_not_json(serve, fixtures_dir):
    path = "/v2/aggs/ticker/AAPL/range/1/day/2020-01-02/2020-01-03"
    client, log = serve({path: sample(fixtures_dir, "openapi_examples/stocks_range_AAPL_1_day.csv",
                                      "text/csv")})  # fmt: skip
    with pytest.raises(PolygonPayloadError, match="not valid JSON") as info:
        client.fetch_range(parse_symbol("AAPL"), dt.date(2020, 1, 2), dt.date(2020, 1, 3))
    assert "AAPL (stock) 2020-01-02..2020-01-03" in str(info.value)
    assert len(log) == client.max_attempts  # a garbled 200 is retried, then reported


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("v1_open-close_AAPL_2005-04-01__adjusted=true.json", "/v1/open-close/AAPL/2005-04-01"),
        ("openapi_examples/stocks_open-close_AAPL.json", "/v1/open-close/AAPL/2023-01-09"),
    ],
)  # fmt: skip
def test_stock_open_close_samples_are_flat_bodies_without_bars(serve, fixtures_dir, name, path):
    """The pipeline never calls open-close; read as a page, its flat body holds no bars."""
    client, _ = serve({path: sample(fixtures_dir, name)})
    page = client.get_page(path, kind="range", what=path)
    assert page.status == "OK" and page.bars.height == 0


def test_crypto_open_close_sample_has_no_status_and_is_refused(serve, fixtures_dir):
    path = "/v1/open-close/crypto/BTC/USD/2020-10-09"
    name = "openapi_examples/crypto_open-close_BTC-USD.json"
    client, _ = serve({path: sample(fixtures_dir, name)})
    with pytest.raises(PolygonPayloadError, match="has status None, expected OK or DELAYED"):
        client.get_page(path, kind="range", what=path)
