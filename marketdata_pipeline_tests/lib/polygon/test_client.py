"""The Polygon client against the real simulator over HTTP: paging, retries, refusals."""

from __future__ import annotations

import datetime as dt

import pytest

from marketdata_pipeline.lib.calendar import stock_sessions
from marketdata_pipeline.lib.polygon.errors import (
    PolygonAuthError,
    PolygonPayloadError,
    PolygonUnavailableError,
    PolygonUnreachableError,
)
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbol
from marketdata_pipeline_tests.resources import TEST_API_KEY, make_polygon

AAPL = parse_symbol("AAPL")
START, END = dt.date(2024, 1, 2), dt.date(2024, 1, 31)


def test_pagination_follows_next_url_across_pages(sim):
    polygon = make_polygon(sim, page_limit=5)
    frame = polygon.get_client().fetch_range(AAPL, START, END)
    sessions = stock_sessions(START, END)
    assert frame.get_column("day").to_list() == sessions
    pages = sim.stats()["log"]
    assert len(pages) == -(-len(sessions) // 5)  # ceil: one request per page
    assert all(entry["status"] == 200 for entry in pages)
    # The cursor pages are joined onto our base URL, with the key in the header only.
    assert not any(entry["api_key_in_query"] for entry in pages)


def test_paged_and_single_page_results_are_identical(sim):
    paged = make_polygon(sim, page_limit=3).get_client().fetch_range(AAPL, START, END)
    whole = make_polygon(sim).get_client().fetch_range(AAPL, START, END)
    assert paged.drop("fetched_at").equals(whole.drop("fetched_at"))


def test_429_then_success_is_retried(sim):
    sim.add_fault(kind="status", status_code=429, times=2)
    polygon = make_polygon(sim)
    frame = polygon.get_client().fetch_range(AAPL, START, END)
    assert frame.height == len(stock_sessions(START, END))
    statuses = [entry["status"] for entry in sim.stats()["log"]]
    assert statuses == [429, 429, 200]
    assert polygon.get_client().stats.retries == 2


def test_retry_after_is_honoured(sim):
    sim.add_fault(kind="status", status_code=429, retry_after=1, times=1)
    make_polygon(sim).get_client().fetch_range(AAPL, START, END)
    first, second = sim.stats()["log"]
    assert second["t"] - first["t"] >= 0.9


def test_5xx_html_bodies_are_retried_until_success(sim):
    for code in (500, 502, 503, 504):
        sim.add_fault(kind="status", status_code=code, body="html", times=1)
    frame = make_polygon(sim, max_attempts=6).get_client().fetch_range(AAPL, START, END)
    assert frame.height > 0
    assert [e["status"] for e in sim.stats()["log"]] == [500, 502, 503, 504, 200]


def test_persistent_5xx_gives_up_with_a_clear_error(sim):
    sim.add_fault(kind="status", status_code=503, body="html")
    with pytest.raises(PolygonUnavailableError) as info:
        make_polygon(sim, max_attempts=3).get_client().fetch_range(AAPL, START, END)
    message = str(info.value)
    assert "AAPL" in message and "2024-01-02..2024-01-31" in message and "503" in message
    assert "gave up after 3 attempts" in message
    assert len(sim.stats()["log"]) == 3


def test_401_is_not_retried_and_names_the_symbol_and_the_api_message_without_the_key(sim):
    polygon = make_polygon(sim, api_key="wrong-" + TEST_API_KEY)
    with pytest.raises(PolygonAuthError) as info:
        polygon.get_client().fetch_range(AAPL, START, END)
    message = str(info.value)
    assert "HTTP 401" in message and "Unknown API Key" in message and "AAPL" in message
    assert TEST_API_KEY not in message and "wrong-" not in message
    assert len(sim.stats()["log"]) == 1  # not retried


def test_after_a_refused_key_the_client_sends_nothing_more_even_with_16_workers(sim):
    """The first request goes alone; once it is refused, the 15 others waiting are not sent."""
    from concurrent.futures import ThreadPoolExecutor

    reported: list[str] = []
    polygon = make_polygon(sim, api_key="wrong-" + TEST_API_KEY, max_concurrent_requests=16)
    client = polygon.get_client()
    client.on_dead_end = reported.append
    symbols = [parse_symbol(t) for t in sim.state.stock_tickers()[:16] if "." not in t]

    def fetch(sym):
        try:
            client.fetch_range(sym, START, END)
        except PolygonAuthError as exc:
            return str(exc)
        return "fetched"

    with ThreadPoolExecutor(16) as pool:
        messages = list(pool.map(fetch, symbols))
    assert sim.stats(include_log=False)["requests"] == 1
    assert sum("not requested: the API key was refused" in m for m in messages) == len(symbols) - 1
    (line,) = reported
    assert line.startswith(f"the Polygon API at {sim.base_url} refused the key: HTTP 401")
    assert TEST_API_KEY not in line


def test_a_refused_connection_is_tried_three_times_then_nothing_more_is_sent():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed again: nothing listens
    reported: list[str] = []
    client = PolygonResource(
        api_key="a-key-of-some-length", base_url=url, requests_per_minute=60_000, max_attempts=8
    ).get_client()
    client.on_dead_end = reported.append
    with pytest.raises(PolygonUnreachableError, match="gave up after 3 attempts") as first:
        client.fetch_range(AAPL, START, END)
    assert f"nothing listens at {url}" in str(first.value)
    assert client.stats.by_status["connection-refused"] == 3
    with pytest.raises(PolygonUnreachableError, match="not requested: nothing listens at"):
        client.fetch_range(parse_symbol("MSFT"), START, END)
    assert client.stats.attempts == 3, "nothing sent after the dead end"
    assert reported == [
        f"cannot connect to the Polygon API at {url}: connection refused (nothing listens "
        "there: check POLYGON_BASE_URL)"
    ]


def test_403_not_authorized_is_not_retried(sim):
    sim.add_fault(kind="status", status_code=403)
    with pytest.raises(PolygonAuthError, match="HTTP 403"):
        make_polygon(sim).get_client().fetch_range(AAPL, START, END)
    assert len(sim.stats()["log"]) == 1


def test_a_next_url_that_repeats_forever_is_stopped(sim):
    sim.add_fault(kind="next_url_loop")
    with pytest.raises(PolygonPayloadError, match="repeats a next_url"):
        make_polygon(sim, page_limit=5).get_client().fetch_range(AAPL, START, END)
    assert len(sim.stats()["log"]) <= 3


def test_crypto_uses_the_x_prefixed_ticker_and_utc_days(sim):
    btc = parse_symbol("BTCUSD", AssetClass.CRYPTO)
    frame = make_polygon(sim).get_client().fetch_range(btc, START, END)
    assert frame.height == (END - START).days + 1
    assert frame.get_column("symbol").unique().to_list() == ["BTCUSD"]
    assert sim.stats()["log"][0]["ticker"] == "X:BTCUSD"


def test_grouped_daily_returns_the_market_for_a_session(sim):
    frame = make_polygon(sim).get_client().fetch_grouped(AssetClass.STOCK, dt.date(2024, 7, 3))
    assert {"AAPL", "MSFT"} <= set(frame.get_column("symbol").to_list())
    assert frame.get_column("day").unique().to_list() == [dt.date(2024, 7, 3)]
    holiday = make_polygon(sim).get_client().fetch_grouped(AssetClass.STOCK, dt.date(2024, 7, 4))
    assert holiday.height == 0
