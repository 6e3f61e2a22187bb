"""The split-versus-move classification (pure logic)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from marketdata_pipeline.lib.candles.corporate_actions import (
    nearest_split_ratio,
    split_like_moves,
)

DAYS = [dt.date(2024, 5, d) for d in (6, 7, 8, 9, 10)]
NO_SPLITS = pl.DataFrame(schema={"symbol": pl.String, "execution_date": pl.Date})


def series(symbol: str, closes: list[float], volumes: list[float], opens=None) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(closes),
            "day": DAYS[: len(closes)],
            "open": [float(x) for x in (opens or closes)],
            "close": [float(x) for x in closes],
            "volume": [float(x) for x in volumes],
        },
        schema={
            "symbol": pl.String,
            "day": pl.Date,
            "open": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        },
    )


@pytest.mark.parametrize(
    ("ratio", "label"),
    [(0.5, "2-for-1"), (0.26, "4-for-1"), (0.1, "10-for-1"), (10.3, "1-for-10"),
     (0.66, "3-for-2"), (2.0, "1-for-2"), (0.42, "5-for-2"), (0.8, None), (1.2, None),
     (0.45, None), (0.0, None)],
)  # fmt: skip
def test_nearest_split_ratio(ratio, label):
    assert nearest_split_ratio(ratio) == label


def test_a_split_like_step_without_an_event_is_flagged():
    frame = series("AAA", [100, 101, 50.4, 51, 50], [1e6, 1e6, 2.1e6, 2e6, 2e6])
    (row,) = split_like_moves(frame, NO_SPLITS).rows(named=True)
    assert (row["symbol"], row["day"], row["nearest_split"]) == ("AAA", DAYS[2], "2-for-1")
    assert row["verdict"] == "possible_unrecorded_split"


def test_a_real_split_in_the_feed_is_not_flagged():
    frame = series("AAA", [100, 101, 50.4, 51, 50], [1e6, 1e6, 2.1e6, 2e6, 2e6])
    splits = pl.DataFrame({"symbol": ["AAA"], "execution_date": [DAYS[2]]})
    (row,) = split_like_moves(frame, splits).rows(named=True)
    assert row["verdict"] == "split_event"


def test_a_crash_on_heavy_volume_is_a_price_move_not_a_split():
    # Opens near the previous close and halves during the day on ten times the volume.
    frame = series("AAA", [100, 101, 50.5, 52], [1e6, 1e6, 1e7, 5e6], opens=[100, 100, 99, 50])
    (row,) = split_like_moves(frame, NO_SPLITS).rows(named=True)
    assert row["verdict"] == "price_move"


def test_a_reverse_split_and_other_symbols_are_told_apart():
    reverse = series("BBB", [2.0, 2.02, 20.5, 20.4], [5e6, 5e6, 5.1e5, 5e5])
    quiet = series("CCC", [10, 10.2, 10.1, 9.9], [1e5, 1e5, 1e5, 1e5])
    result = split_like_moves(pl.concat([reverse, quiet]), NO_SPLITS)
    assert result.select("symbol", "day", "nearest_split", "verdict").rows() == [
        ("BBB", DAYS[2], "1-for-10", "possible_unrecorded_split")
    ]


def test_no_candles_gives_an_empty_frame():
    empty = series("AAA", [], [])
    assert split_like_moves(empty.clear(), NO_SPLITS).height == 0
