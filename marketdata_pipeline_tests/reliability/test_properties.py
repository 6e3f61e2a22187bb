"""Property-based tests (hypothesis): vendor payloads in, candles out, Postgres round trips.

1. Whatever body the API sends (JSON documents with wrong types, missing keys, "NaN" strings,
   bare NaN/Infinity tokens, numbers past float range, truncated text, random bytes), parsing,
   normalising and validating it either yields candles that satisfy the schema and every row
   rule, or raises the project's own `MarketdataError`. Never another exception.
2. Any frame in the candle schema, written through the store's one write (`write_batch`) and
   read back through `read_slice`, comes back identical: fractional volumes, null
   vwap/transactions, extreme and subnormal floats, any text.
"""

from __future__ import annotations

import datetime as dt
import json
import math

import polars as pl
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata_pipeline.lib.calendar import market_day_start
from marketdata_pipeline.lib.candles.accumulator import CandleAccumulator
from marketdata_pipeline.lib.candles.schema import (
    CANDLE_SCHEMA,
    PRICE_COLUMNS,
    REJECTED_SCHEMA,
    REQUIRED_COLUMNS,
    UTC_DATETIME,
)
from marketdata_pipeline.lib.errors import MarketdataError
from marketdata_pipeline.lib.polygon.payload import normalise_bars, parse_page
from marketdata_pipeline.lib.postgres.io_manager import read_slice
from marketdata_pipeline.lib.symbols import AssetClass
from marketdata_pipeline_tests.helpers import store_rows

START, END = dt.date(2024, 1, 1), dt.date(2024, 1, 10)
FETCHED_AT = dt.datetime(2024, 2, 1, 12, tzinfo=dt.UTC)

# Placeholders swapped for raw tokens after json.dumps (which cannot write them itself).
_HUGE = "\x00HUGE\x00"  # 1e400: past float range
_BIGINT = "\x00BIGINT\x00"  # an integer far past int64

# -- payload strategies -----------------------------------------------------------------------

junk = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["NaN", "Infinity", "-1", "1e3", "", "null"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.just(_HUGE),
    st.just(_BIGINT),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(min_value=0.01, max_value=1e6),
)
#: Timestamps and counts at the edges of what dates, int64 and float64 can hold.
edges = st.sampled_from(
    [
        -62135596800001,  # just before 0001-01-01: year 0
        253402300800000,  # 10000-01-01
        10**15 - 1,
        -(10**15) + 1,
        1704085200000.5,  # a fractional millisecond
        2**63,
        -(2**63) - 1,
        1e308,
        5e-324,
    ]
)
finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
field_value = st.one_of(finite, finite, finite, numbers, junk, edges)


def _day_start_ms(asset_class: AssetClass, offset: int) -> int:
    day = START + dt.timedelta(days=offset)
    return int(market_day_start(asset_class, day).timestamp() * 1000)


@st.composite
def bars(draw, asset_class: AssetClass):
    """Mostly plausible bars with some fields broken, missing or of the wrong type."""
    low = draw(st.floats(min_value=0.01, max_value=1e5))
    high = low + draw(st.floats(min_value=0, max_value=1e3))
    bar = {
        "o": draw(st.floats(min_value=low, max_value=high)),
        "h": high,
        "l": low,
        "c": draw(st.floats(min_value=low, max_value=high)),
        "v": draw(st.floats(min_value=0, max_value=1e9)),
        "vw": draw(st.floats(min_value=low, max_value=high)),
        "n": draw(st.integers(min_value=0, max_value=10**6)),
        "t": _day_start_ms(asset_class, draw(st.integers(min_value=-3, max_value=12))),
    }
    if asset_class is AssetClass.CRYPTO:
        bar["T"] = draw(st.sampled_from(["X:BTCUSD", "X:ETHUSD", "BTCUSD", "X:", "", "x:btcusd"]))
    for key in draw(st.lists(st.sampled_from([*sorted(bar), "extra"]), max_size=3)):
        action = draw(st.sampled_from(["drop", "replace", "replace"]))
        if action == "drop":
            bar.pop(key, None)
        else:
            bar[key] = draw(field_value)
    return bar


@st.composite
def documents(draw, asset_class: AssetClass):
    """A page envelope around `bars`, with any field possibly wrong."""
    results = draw(st.lists(bars(asset_class), max_size=6))
    doc: dict = {
        "status": draw(st.sampled_from(["OK"] * 6 + ["DELAYED", "ERROR", "NOT_AUTHORIZED", "ok"])),
        "ticker": "AAPL" if asset_class is AssetClass.STOCK else None,
        "adjusted": True,
        "queryCount": len(results),
        "resultsCount": len(results),
        "results": results,
    }
    for key in draw(st.lists(st.sampled_from([*sorted(doc), "next_url"]), max_size=1)):
        if draw(st.booleans()):
            doc.pop(key, None)
        else:
            doc[key] = draw(st.one_of(junk, numbers, st.lists(junk, max_size=2)))
    if draw(st.integers(0, 9)) == 0:  # now and then, not an object at all
        return draw(st.one_of(junk, st.lists(st.just(doc), max_size=2)))
    return doc


def _dump(doc) -> bytes:
    text = json.dumps(doc, allow_nan=True)
    text = text.replace(json.dumps(_HUGE), "1e400").replace(json.dumps(_BIGINT), "9" * 40)
    return text.encode()


@st.composite
def bodies(draw, asset_class: AssetClass):
    """Response bodies: serialised documents, cut-off ones, and arbitrary bytes."""
    body = _dump(draw(documents(asset_class)))
    kind = draw(st.sampled_from(["whole"] * 8 + ["truncated", "bytes"]))
    if kind == "truncated":
        return body[: draw(st.integers(min_value=0, max_value=len(body)))]
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    return body


def _ingest(body: bytes, asset_class: AssetClass):
    """What the candle asset does with one page (ingest.py), minus Dagster."""
    page = parse_page(body, request="property test")
    endpoint = "range" if asset_class is AssetClass.STOCK else "grouped"
    frame = normalise_bars(
        page.bars,
        asset_class=asset_class,
        endpoint=endpoint,
        symbol="AAPL" if endpoint == "range" else None,
        adjusted=page.adjusted if page.adjusted is not None else True,
        provisional=page.provisional,
        fetched_at=FETCHED_AT,
        source=f"polygon:{endpoint}",
    )
    if endpoint == "grouped":  # the resource keeps the requested symbols only
        frame = frame.filter(pl.col("symbol").is_in(["BTCUSD", "ETHUSD"]))
    symbols = ["AAPL"] if endpoint == "range" else ["BTCUSD", "ETHUSD"]
    # The asset's and the repair's own accumulator: structure, quarantine, tally.
    rows = CandleAccumulator(f"{asset_class}_daily_candles", asset_class)
    report = rows.add(frame, start=START, end=END, symbols=symbols)
    if not report.passed:
        return frame, None  # the asset raises before Output: nothing is written
    return frame, (rows.candles, rows.rejected())


def _assert_sound(frame: pl.DataFrame, good: pl.DataFrame, rejected: pl.DataFrame) -> None:
    assert good.schema == pl.Schema(CANDLE_SCHEMA)
    assert rejected.schema == pl.Schema(REJECTED_SCHEMA)
    assert good.height + rejected.height == frame.height
    assert good.select(pl.col(c).null_count() for c in REQUIRED_COLUMNS).sum_horizontal()[0] == 0
    for column in PRICE_COLUMNS:
        values = good.get_column(column)
        assert values.is_finite().all() and (values > 0).all()
    assert (good["low"] <= good["high"]).all()
    assert ((good["low"] <= good["open"]) & (good["open"] <= good["high"])).all()
    assert ((good["low"] <= good["close"]) & (good["close"] <= good["high"])).all()
    assert (good["volume"].is_finite() & (good["volume"] >= 0)).all()
    assert not good.select("symbol", "day").is_duplicated().any()
    assert good["day"].is_between(START, END).all()
    assert rejected["reason"].null_count() == 0


@pytest.mark.parametrize("asset_class", [AssetClass.STOCK, AssetClass.CRYPTO])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_payload_gives_sound_candles_or_a_marketdata_error(asset_class, data):
    body = data.draw(bodies(asset_class))
    try:
        frame, split = _ingest(body, asset_class)
    except MarketdataError:
        return  # refused with the project's own, user-facing error
    if split is not None:
        _assert_sound(frame, *split)


@st.composite
def numeric_pages(draw):
    """Well-typed pages whose numbers may break row rules: the quarantine's inputs."""
    weird = st.one_of(st.floats(min_value=-10, max_value=200), st.just(0.0), finite)
    offsets = draw(
        st.lists(st.integers(min_value=0, max_value=9), unique=True, max_size=8)
        | st.lists(st.integers(min_value=-1, max_value=10), max_size=4)  # dupes, outside
    )
    results = []
    for offset in offsets:
        low = draw(st.floats(min_value=0.01, max_value=1e4))
        high = low + draw(st.floats(min_value=0, max_value=100))
        bar = {
            "o": draw(st.floats(min_value=low, max_value=high)),
            "h": high,
            "l": low,
            "c": draw(st.floats(min_value=low, max_value=high)),
            "v": draw(st.floats(min_value=0, max_value=1e9)),
            "t": _day_start_ms(AssetClass.STOCK, offset),
        }
        if draw(st.booleans()):
            bar["vw"] = draw(st.floats(min_value=low, max_value=high))
        if draw(st.booleans()):
            bar["n"] = draw(st.integers(min_value=0, max_value=10**9))
        for key in draw(
            st.lists(st.sampled_from(["o", "h", "l", "c", "v", "vw", "n"]), max_size=2)
        ):
            bar[key] = draw(weird)
        bar["t"] += draw(st.sampled_from([0] * 12 + [3_600_000, -1, 0.5]))
        results.append(bar)
    doc = {"status": "OK", "ticker": "AAPL", "resultsCount": len(results), "results": results}
    return json.dumps(doc).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=numeric_pages())
def test_any_numbers_give_sound_candles_plus_reasoned_rejects(body):
    frame, split = _ingest(body, AssetClass.STOCK)  # well-typed: never refused outright
    if split is not None:
        _assert_sound(frame, *split)


def test_known_nasty_payloads_are_refused_or_sound():
    cases = [
        b'{"status":"OK","results":[{"o":1,"h":1e400,"l":1,"c":1,"v":1,"t":1704085200000}]}',
        b'{"status":"OK","results":[{"o":1,"h":NaN,"l":1,"c":1,"v":1,"t":1704085200000}]}',
        b'{"status":"OK","results":[{"o":"NaN","h":2,"l":1,"c":1,"v":1,"t":1704085200000}]}',
        b'{"status":"OK","results":[{"o":1,"h":2,"l":1,"c":1,"v":1,"t":1e300}]}',
        b'{"status":"OK","results":[{"o":1,"h":2,"l":1,"c":1,"v":1,"t":-62135596800001}]}',
        b'{"status":"OK","results":[{"o":1,"h":2,"l":1,"c":1,"v":1,"t":1704085200000.5}]}',
        b'{"status":"OK","resultsCount":99999999999999999999999,"results":[]}',
        b'{"status":"OK","results":[{"o":1,"h":2,"l":1,"c":1,"v":1,"n":1e30,"t":1704085200000}]}',
        b'[{"status":"OK"}]',
        b"",
        b"\xff\xfe",
    ]
    for body in cases:
        try:
            frame, split = _ingest(body, AssetClass.STOCK)
        except MarketdataError:
            continue
        if split is not None:
            _assert_sound(frame, *split)


@pytest.mark.parametrize(
    "body",
    [b'[{"status":"OK"}]', b'[{"status":"OK","results":[]}]', b"[]", b'"OK"', b"null", b"{}"],
)
def test_a_body_that_is_not_one_page_object_is_refused(body):
    # An "empty page" that is really malformed must not pass: it would replace stored rows
    # with nothing.
    with pytest.raises(MarketdataError):
        parse_page(body, request="property test")


# -- Postgres round trips ---------------------------------------------------------------------

SYMBOLS = ["AAPL", "BRK.A", "BTCUSD", "Z"]
any_float = st.floats(allow_nan=False, allow_infinity=False)
extreme_floats = st.one_of(
    any_float,
    st.sampled_from([5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.1]),
)
timestamps = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),
    max_value=dt.datetime(2200, 12, 31),
    timezones=st.just(dt.UTC),
)


@st.composite
def candle_frames(draw):
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(SYMBOLS), st.integers(min_value=0, max_value=60)),
            unique=True,
            max_size=12,
        )
    )
    rows = []
    for symbol, offset in keys:
        rows.append(
            {
                "symbol": symbol,
                "day": START + dt.timedelta(days=offset),
                "ts": draw(timestamps),
                "open": draw(extreme_floats),
                "high": draw(extreme_floats),
                "low": draw(extreme_floats),
                "close": draw(extreme_floats),
                "volume": draw(st.one_of(extreme_floats, st.floats(0, 1e4))),
                "vwap": draw(st.one_of(st.none(), extreme_floats)),
                "transactions": draw(
                    st.one_of(st.none(), st.integers(min_value=-(2**63), max_value=2**63 - 1))
                ),
                "adjusted": draw(st.booleans()),
                "provisional": draw(st.booleans()),
                "source": draw(
                    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
                ),
                "fetched_at": draw(timestamps),
            }
        )
    return pl.DataFrame(rows, schema=CANDLE_SCHEMA).sort("symbol", "day")


@pytest.fixture(scope="module")
def roundtrip_url(pg_server, template_database):
    """One database for the whole round-trip property (each example replaces its own slice)."""
    name = "t_roundtrip_props"
    admin = pg_server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_database}")
    yield pg_server.get_uri(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Exact equality, bit for bit on floats (so -0.0 and 0.0 differ)."""
    if a.schema != b.schema or a.height != b.height:
        return False
    for column in a.columns:
        left, right = a.get_column(column), b.get_column(column)
        if left.dtype == pl.Float64:
            left = left.map_elements(_float_bits, return_dtype=pl.String, skip_nulls=True)
            right = right.map_elements(_float_bits, return_dtype=pl.String, skip_nulls=True)
        if not left.equals(right, check_names=True, null_equal=True):
            return False
    return True


def _float_bits(value: float) -> str:
    return value.hex() if not math.isnan(value) else "nan"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=candle_frames())
def test_write_then_read_returns_exactly_the_frame(roundtrip_url, frame):
    end_exclusive = START + dt.timedelta(days=61)
    with psycopg.connect(roundtrip_url) as conn:
        store_rows(
            conn,
            "crypto_daily_candles",
            frame,
            start=START,
            end_exclusive=end_exclusive,
            symbols=SYMBOLS,
        )
        back = read_slice(
            conn, table="crypto_daily_candles", start=START, end_exclusive=end_exclusive
        )
    assert _same(back, frame), (frame.to_dicts(), back.to_dicts())


def test_round_trip_keeps_fractional_volume_nulls_and_extremes(roundtrip_url):
    ts = dt.datetime(2024, 1, 1, 5, tzinfo=dt.UTC)
    frame = pl.DataFrame(
        {
            "symbol": ["BTCUSD", "BTCUSD", "Z"],
            "day": [START, START + dt.timedelta(days=1), START],
            "ts": [ts, ts, ts],
            "open": [1.7976931348623157e308, 5e-324, -0.0],
            "high": [0.1 + 0.2, 1e-300, 123456789.123456789],
            "low": [1 / 3, 2.2250738585072014e-308, -1.7976931348623157e308],
            "close": [1.0, 2.0, 3.0],
            "volume": [0.00012345678901234567, 12345.678, 1e-9],
            "vwap": [None, 1.5, None],
            "transactions": [None, 2**63 - 1, -(2**63)],
            "adjusted": [True, False, True],
            "provisional": [False, True, False],
            "source": ['quote " comma , newline \n tab \t', "ünïcødé ✓", ""],
            "fetched_at": [ts, ts, ts],
            "vendor_t": [None, 2**53, -1],
        },
        schema=CANDLE_SCHEMA,
    )
    with psycopg.connect(roundtrip_url) as conn:
        store_rows(
            conn,
            "crypto_daily_candles",
            frame,
            start=START,
            end_exclusive=START + dt.timedelta(days=61),
            symbols=SYMBOLS,
        )
        back = read_slice(conn, table="crypto_daily_candles")
    assert _same(back, frame.sort("symbol", "day")), back.to_dicts()
    assert back.schema["fetched_at"] == UTC_DATETIME
