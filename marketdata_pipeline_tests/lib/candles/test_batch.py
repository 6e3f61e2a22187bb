"""`CandleBatch` says what it carries: rows only with the kind of source that answered them."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from marketdata_pipeline.lib.candles.batch import CandleBatch
from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA
from marketdata_pipeline.lib.candles.spool import CandleSpool
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.symbols import AssetClass

WINDOW = CandleWindow(dt.date(2024, 1, 1), dt.date(2024, 1, 5))


def one_row() -> pl.DataFrame:
    ts = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    row = dict.fromkeys(CANDLE_SCHEMA)
    row.update(symbol="BTCUSD", day=WINDOW.first, ts=ts, open=1.0, high=1.0, low=1.0, close=1.0,
               volume=1.0, adjusted=True, provisional=False, source="simulator:range",
               fetched_at=ts)  # fmt: skip
    return pl.DataFrame([row], schema=CANDLE_SCHEMA)


def test_rows_without_the_source_that_answered_them_are_refused(tmp_path):
    with pytest.raises(ValueError, match="1 rows without a source_family"):
        CandleBatch(AssetClass.CRYPTO, WINDOW, ("BTCUSD",), None, one_row())
    with CandleSpool(tmp_path) as spool:
        spool.add(one_row())
        with pytest.raises(ValueError, match="rows without a source_family"):
            CandleBatch(AssetClass.CRYPTO, WINDOW, ("BTCUSD",), None, spool)
        batch = CandleBatch(AssetClass.CRYPTO, WINDOW, ("BTCUSD",), "simulator", spool)
        assert batch.rows == 1 and [f.height for f in batch.candle_frames()] == [1]
    # Nothing answered and nothing carried (every symbol failed): no source to name.
    empty = CandleBatch(AssetClass.CRYPTO, WINDOW, (), None, one_row().clear())
    assert empty.rows == 0 and list(empty.candle_frames()) == []


def test_only_the_two_source_families_exist():
    with pytest.raises(ValueError, match="'real' is not a source family"):
        CandleBatch(AssetClass.CRYPTO, WINDOW, ("BTCUSD",), "real", one_row())
    with pytest.raises(TypeError, match="CandleSpool or a polars DataFrame"):
        CandleBatch(AssetClass.CRYPTO, WINDOW, ("BTCUSD",), "polygon", [one_row()])
