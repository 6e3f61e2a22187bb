"""Fault rules, body corruptions and the rolling-window limiter, without a server."""

from __future__ import annotations

import pytest

from polygon_simulator.faults import (
    CORRUPTIONS,
    FaultBook,
    FaultRule,
    corrupt_results,
    error_payload,
    nginx_html,
)
from polygon_simulator.ratelimit import RollingWindowLimiter, retry_after_header
from polygon_simulator.state import ConfigError, SimulatorState

RANGE = "/v2/aggs/ticker/AAPL/range/1/day/2024-01-01/2024-01-31"
GROUPED = "/v2/aggs/grouped/locale/us/market/stocks/2024-01-02"


def test_rule_matching() -> None:
    assert FaultRule(kind="reset").matches(RANGE, "range", "AAPL")
    assert FaultRule(kind="reset", match_path="/range/").matches(RANGE, "range", "AAPL")
    assert FaultRule(kind="reset", match_path=r"ticker/A+PL").matches(RANGE, "range", "AAPL")
    assert not FaultRule(kind="reset", match_path="grouped").matches(RANGE, "range", "AAPL")
    assert FaultRule(kind="reset", ticker="AAPL").matches(RANGE, "range", "AAPL")
    assert not FaultRule(kind="reset", ticker="MSFT").matches(RANGE, "range", "AAPL")
    # A ticker rule never matches grouped requests, even though AAPL is in the response.
    assert not FaultRule(kind="reset", ticker="AAPL").matches(GROUPED, "grouped", None)
    assert not FaultRule(kind="reset", endpoint="range").matches(GROUPED, "grouped", None)
    # An invalid regex still works as a literal substring.
    assert FaultRule(kind="reset", match_path="2024-01-31(").matches(RANGE + "(", "range", "AAPL")


def test_book_fires_times_then_stops_in_order() -> None:
    book = FaultBook()
    first = book.add(FaultRule(kind="status", status_code=503, times=2))
    book.add({"kind": "delay", "seconds": 0.1})  # times=None: forever
    kinds = [book.take(RANGE, "range", "AAPL").kind for _ in range(4)]
    assert kinds == ["status", "status", "delay", "delay"]
    described = {d["id"]: d for d in book.describe()}
    assert described[first]["fired"] == 2 and described[first]["remaining"] == 0
    assert book.remove(first) and not book.remove(first)
    book.clear()
    assert book.take(RANGE, "range", "AAPL") is None


def test_invalid_rules_are_rejected() -> None:
    state = SimulatorState()
    for bad in (
        {"kind": "explode"},
        {"kind": "status", "status_code": 200},
        {"kind": "bad_bars", "corrupt": ["made_up"]},
        {"kind": "bad_bars", "corrupt": []},
        {"kind": "delay", "retry_after": 3},
        {"kind": "status", "unknown_field": 1},
    ):
        with pytest.raises(ConfigError):
            state.add_fault(bad)
    with pytest.raises(ConfigError):  # all or nothing
        state.add_fault([{"kind": "reset"}, {"kind": "nope"}])
    assert state.faults() == []


def test_error_payloads_have_the_real_shapes() -> None:
    assert error_payload(429, "r") == {
        "status": "ERROR",
        "request_id": "r",
        "error": "You've exceeded the maximum requests per minute, please wait or upgrade your "
        "subscription to continue.",
    }
    assert error_payload(403, "r") == {
        "status": "NOT_AUTHORIZED",
        "request_id": "r",
        "message": "Your plan doesn't include this data timeframe. Please upgrade your plan at "
        "https://massive.com/pricing",
    }
    assert error_payload(401, "r", "API Key was not provided")["error"] == (
        "API Key was not provided"
    )
    assert error_payload(400, "r", "custom") == {
        "status": "ERROR",
        "request_id": "r",
        "error": "custom",
    }
    assert "<center>nginx</center>" in nginx_html(504) and "504 Gateway Time-out" in nginx_html(504)


def _bars() -> list[dict]:
    return [
        {"v": 100.0, "vw": 10.5, "o": 10.0, "c": 11.0, "h": 12.0, "l": 9.0, "t": 1000 * i, "n": 5}
        for i in range(4)
    ]


def test_each_corruption_hits_its_own_bar() -> None:
    names = ["high_below_low", "negative_volume", "zero_price", "misaligned_t"]
    original = _bars()
    out = corrupt_results(original, names)
    assert original == _bars()  # the input is not modified
    assert out[0]["h"] < out[0]["l"]
    assert out[1]["v"] < 0
    assert out[2]["o"] == 0.0 and out[2]["l"] == 0.0 and out[2]["h"] >= out[2]["l"]
    assert out[3]["t"] == 3000 + 3_600_000


def test_structural_corruptions() -> None:
    out = corrupt_results(_bars(), ["null_field", "string_field", "nan_price", "duplicate_day"])
    assert out[0]["c"] is None
    assert out[1]["c"] == "11.0"
    assert out[2]["c"] == "NaN"
    assert len(out) == 5 and out[3] == out[4]
    nan = corrupt_results(_bars(), ["nan_literal"])[0]["c"]
    assert nan != nan
    assert set(CORRUPTIONS) >= {"high_below_low", "nan_price", "duplicate_day"}


def test_limiter_rolls_and_says_when_a_slot_frees() -> None:
    limiter = RollingWindowLimiter()
    assert [limiter.acquire(3, now=t) for t in (0.0, 10.0, 20.0)] == [None, None, None]
    assert limiter.acquire(3, now=30.0) == pytest.approx(30.0)  # the t=0 slot frees at 60
    assert limiter.acquire(3, now=59.0) == pytest.approx(1.0)  # refused requests take no slot
    assert limiter.acquire(3, now=60.0) is None
    assert limiter.acquire(3, now=61.0) == pytest.approx(9.0)
    assert limiter.acquire(None, now=61.0) is None
    assert limiter.acquire(1, now=61.0) == pytest.approx(59.0)  # lowered live: all 3 expire
    assert retry_after_header(0.2) == "1" and retry_after_header(29.1) == "30"
