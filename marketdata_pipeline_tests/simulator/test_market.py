"""The synthetic market: determinism, calendars, timestamps, invariants, revisions, universes."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata_pipeline.lib.calendar import is_stock_session
from polygon_simulator import market

FIXTURES = Path(__file__).parent.parent / "fixtures" / "polygon"
D = dt.date


def _days(b: dict[str, np.ndarray]) -> list[dt.date]:
    return [d.item() for d in b["day"]]


def assert_valid(b: dict[str, np.ndarray]) -> None:
    """The invariants every simulated bar keeps."""
    o, h, low, c, v, vw, n = (b[k] for k in ("o", "h", "l", "c", "v", "vw", "n"))
    assert (low > 0).all()
    assert (low <= np.minimum(o, c)).all()
    assert (np.maximum(o, c) <= h).all()
    assert ((low <= vw) & (vw <= h)).all()
    assert (v > 0).all()
    assert n.dtype.kind == "i" and (n > 0).all()
    assert np.isfinite(np.stack([o, h, low, c, v, vw])).all()


def test_same_inputs_give_same_bars() -> None:
    a = market.bars("AAPL", D(2020, 1, 1), D(2020, 12, 31))
    b = market.bars("AAPL", D(2020, 1, 1), D(2020, 12, 31))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_tickers_differ() -> None:
    a = market.bars("AAPL", D(2020, 1, 1), D(2020, 1, 31))
    b = market.bars("MSFT", D(2020, 1, 1), D(2020, 1, 31))
    assert not np.array_equal(a["c"], b["c"])


@settings(max_examples=40, deadline=None)
@given(
    ticker=st.sampled_from(["AAPL", "BRK.A", "ZZT", "X:BTCUSD", "X:SHIBUSD", "X:QQQGBP"]),
    start=st.dates(min_value=D(1995, 1, 1), max_value=D(2030, 1, 1)),
    length=st.integers(min_value=0, max_value=400),
    cut=st.integers(min_value=0, max_value=400),
)
def test_sub_ranges_equal_the_full_range(
    ticker: str, start: dt.date, length: int, cut: int
) -> None:
    end = start + dt.timedelta(days=length)
    full = market.bars(ticker, start, end)
    assert_valid(full)
    middle = start + dt.timedelta(days=min(cut, length))
    left = market.bars(ticker, start, middle)
    right = market.bars(ticker, middle + dt.timedelta(days=1), end)
    for key in full:
        np.testing.assert_array_equal(np.concatenate([left[key], right[key]]), full[key])


@pytest.mark.parametrize(
    "day",
    [
        D(2024, 7, 4),  # Independence Day
        D(2024, 7, 6),  # Saturday
        D(2024, 7, 7),  # Sunday
        D(2012, 10, 29),  # hurricane Sandy
        D(2012, 10, 30),
        D(2001, 9, 11),  # the four days after 9/11
        D(2001, 9, 12),
        D(2001, 9, 13),
        D(2001, 9, 14),
    ],
)
def test_no_stock_bar_on_closed_days(day: dt.date) -> None:
    assert len(market.bars("AAPL", day, day)["c"]) == 0


def test_stock_bars_are_exactly_the_nyse_sessions() -> None:
    b = market.bars("SPY", D(2012, 10, 1), D(2012, 11, 30))
    days = _days(b)
    every_day = [D(2012, 10, 1) + dt.timedelta(days=i) for i in range(61)]
    assert days == [d for d in every_day if is_stock_session(d)]
    assert D(2012, 10, 29) not in days and D(2012, 10, 31) in days


def test_crypto_has_a_bar_every_day_with_fractional_volume() -> None:
    b = market.bars("X:BTCUSD", D(2024, 2, 1), D(2024, 3, 31))
    assert _days(b) == [D(2024, 2, 1) + dt.timedelta(days=i) for i in range(60)]
    assert (b["v"] % 1 != 0).mean() > 0.9
    assert_valid(b)


def test_stock_volume_is_whole_shares() -> None:
    b = market.bars("NVDA", D(2024, 1, 1), D(2024, 6, 30))
    assert (b["v"] % 1 == 0).all() and b["v"].dtype == np.float64


def test_range_timestamps_are_new_york_midnight_across_dst() -> None:
    # The real mock: 2005-04-01 00:00 EST and 2005-04-04 00:00 EDT (DST began 2005-04-03).
    mock_file = FIXTURES / "v2_aggs_ticker_AAPL_range_1_day_2005-04-01_2005-04-04.json"
    mock = json.loads(mock_file.read_text())
    b = market.bars("AAPL", D(2005, 4, 1), D(2005, 4, 4))
    assert b["t"].tolist() == [r["t"] for r in mock["results"]] == [1112331600000, 1112587200000]


def test_grouped_timestamps_are_the_close_and_crypto_is_utc_midnight() -> None:
    days = market.bar_days("AAPL", D(2005, 4, 1), D(2005, 4, 4))
    close = market.grouped_timestamps("AAPL", days)
    assert (close - market.range_timestamps("AAPL", days)).tolist() == [16 * 3_600_000] * 2
    crypto = market.bars("X:ETHUSD", D(2024, 1, 4), D(2024, 1, 4))
    assert crypto["t"].tolist() == [1704326400000]  # 2024-01-04 00:00 UTC, as the real API
    eth_days = market.bar_days("X:ETHUSD", D(2024, 1, 4), D(2024, 1, 4))
    assert market.grouped_timestamps("X:ETHUSD", eth_days).tolist() == [1704326400000]


def test_grouped_bars_match_range_bars() -> None:
    tickers = (*market.stock_universe(300), "KIMpL")
    day = D(2023, 1, 9)
    grouped = market.grouped_bars(tickers, day)
    for i, ticker in enumerate(tickers):
        single = market.bars(ticker, day, day)
        for key in ("o", "h", "l", "c", "v", "vw", "n"):
            assert grouped[key][i] == single[key][0], (ticker, key)
    assert_valid(grouped)


def test_close_to_close_moves_stay_small() -> None:
    for ticker in ("AAPL", "XQZ", "X:BTCUSD", "X:DOGEUSD", "X:FOOEUR"):
        c = market.bars(ticker, D(2002, 1, 1), D(2025, 1, 1))["c"]
        assert np.abs(np.diff(np.log(c))).max() < np.log(1.08), ticker


def test_tiny_crypto_prices_keep_precision() -> None:
    b = market.bars("X:SHIBUSD", D(2024, 1, 1), D(2024, 12, 31))
    assert_valid(b)
    assert b["c"].max() < 0.001
    assert len(set(b["c"].tolist())) > 300  # not collapsed by rounding


def test_prices_are_rounded_to_4_decimals() -> None:
    b = market.bars("MSFT", D(2024, 1, 1), D(2024, 3, 1))
    for key in ("o", "h", "l", "c", "vw"):
        for value in b[key].tolist():
            assert len(repr(value).split(".")[1]) <= 4


def test_revision_changes_only_days_from_revision_from() -> None:
    start, end, cut = D(2024, 6, 1), D(2024, 6, 30), D(2024, 6, 20)
    for ticker in ("AAPL", "X:BTCUSD"):
        base = market.bars(ticker, start, end)
        revised = market.bars(ticker, start, end, revision=1, revision_from=cut)
        again = market.bars(ticker, start, end, revision=2, revision_from=cut)
        before = np.array(_days(base)) < cut
        for key in ("o", "h", "l", "c", "v", "vw"):
            np.testing.assert_array_equal(base[key][before], revised[key][before])
            assert (base[key][~before] != revised[key][~before]).all(), (ticker, key)
        assert not np.array_equal(revised["c"], again["c"])
        assert_valid(revised)


def test_ten_years_of_bars_are_the_same_on_every_call() -> None:
    market.bars("AAPL", D(2010, 1, 1), D(2010, 1, 5))  # warm the calendar tables
    first = market.bars("AAPL", D(2014, 1, 1), D(2023, 12, 31))
    again = market.bars("AAPL", D(2014, 1, 1), D(2023, 12, 31))
    assert len(first["c"]) > 2500
    assert all(np.array_equal(first[key], again[key]) for key in ("o", "h", "l", "c", "v"))


def test_universes_are_fixed_unique_and_valid() -> None:
    stocks = market.stock_universe()
    assert len(stocks) == 2000 == len(set(stocks))
    assert stocks[:10] == (
        "AAPL",
        "MSFT",
        "NVDA",
        "AMZN",
        "GOOGL",
        "GOOG",
        "META",
        "TSLA",
        "JPM",
        "SPY",
    )
    assert "BRK.A" in stocks
    assert all(market.is_valid_ticker(t) and not market.is_crypto(t) for t in stocks)
    assert all(3 <= len(t) <= 5 for t in stocks[len(market.WELL_KNOWN_STOCKS) :])
    crypto = market.crypto_universe()
    assert len(crypto) == 200 == len(set(crypto))
    assert crypto[:5] == ("X:BTCUSD", "X:ETHUSD", "X:SOLUSD", "X:ETHGBP", "X:DOGEUSD")
    assert all(market.is_valid_ticker(t) and market.is_crypto(t) for t in crypto)
    assert market.stock_universe(5) == stocks[:5]
    assert market.stock_universe(2500)[:2000] == stocks


def test_ticker_validation() -> None:
    for good in ("AAPL", "BRK.A", "KIMpL", "X:BTCUSD", "X:ETHGBP"):
        assert market.is_valid_ticker(good)
    for bad in ("aapl", "", "X:", "X:btc", "AA PL", "A/B", "C:EURUSD"):
        assert not market.is_valid_ticker(bad)
    with pytest.raises(market.InvalidTicker):
        market.bars("a b", D(2024, 1, 1), D(2024, 1, 2))


def test_seeds_do_not_depend_on_the_process() -> None:
    # blake2b, not the salted hash(): a fixed value proves it across runs and machines.
    digest = hashlib.blake2b(b"AAPL", digest_size=8).digest()
    assert market.ticker_seed("AAPL") == int.from_bytes(digest, "little")
