"""The pure rules that turn the vendor's ticker rows into securities and intervals."""

from __future__ import annotations

import datetime as dt
import json

from marketdata_pipeline.lib.identity import (
    cross_check,
    group_securities,
    intervals_for,
    last_day_before,
    make_room,
    needs_events,
)
from marketdata_pipeline.lib.polygon.reference import TickerEvent, TickerRecord, parse_ticker
from marketdata_pipeline.lib.postgres.securities import TickerInterval

D = dt.date
FLOOR = D(2020, 1, 1)


def row(ticker, figi=None, *, delisted=None, cik="0000000001") -> TickerRecord:
    instant = (
        dt.datetime.combine(delisted, dt.time(5), tzinfo=dt.UTC) if delisted is not None else None
    )
    return TickerRecord(
        ticker, f"{ticker} Inc", "stocks", "CS", delisted is None, "XNAS", cik, figi, None, instant
    )


def test_delisted_utc_is_the_new_york_midnight_after_the_last_day():
    assert last_day_before(dt.datetime(2023, 3, 10, 5, tzinfo=dt.UTC)) == D(2023, 3, 9)
    assert last_day_before(dt.datetime(2022, 6, 9, 4, tzinfo=dt.UTC)) == D(2022, 6, 8)


def test_rows_with_one_figi_are_one_security_and_need_their_events():
    secs = group_securities(
        [
            row("FB", "BBG000MM2P62", delisted=D(2022, 6, 9)),
            row("META", "BBG000MM2P62"),
            row("AAPL", "BBG000B9XRY4"),
        ]
    )
    assert [s.security_id for s in secs] == ["BBG000B9XRY4", "BBG000MM2P62"]
    assert [s.security_id for s in needs_events(secs)] == ["BBG000MM2P62"]
    meta = secs[1]
    events = [TickerEvent("FB", D(2012, 5, 18)), TickerEvent("META", D(2022, 6, 11))]
    assert intervals_for(meta, events, FLOOR) == [
        TickerInterval("BBG000MM2P62", "FB", D(2012, 5, 18), D(2022, 6, 10)),
        TickerInterval("BBG000MM2P62", "META", D(2022, 6, 11), None),
    ]


def test_a_derived_id_survives_the_delisting_of_its_security():
    (listed,) = group_securities([row("ZZQX")])
    assert listed.security_id.startswith("md:") and len(listed.security_id) == 19
    stored = [TickerInterval(listed.security_id, "ZZQX", FLOOR, None)]
    (delisted,) = group_securities([row("ZZQX", delisted=D(2021, 7, 1))], stored)
    assert delisted.security_id == listed.security_id
    assert intervals_for(delisted, None, FLOOR)[0].last_day == D(2021, 6, 30)


def test_a_later_owner_without_events_starts_after_the_earlier_owner_ended():
    earlier = TickerInterval("BBG00ZQFXB42", "META", D(2010, 1, 4), D(2021, 12, 31))
    later = TickerInterval("md:00000000000000aa", "META", FLOOR, None)
    assert make_room([earlier, later], {"BBG00ZQFXB42"}) == [
        earlier,
        TickerInterval("md:00000000000000aa", "META", D(2022, 1, 1), None),
    ]


def test_stored_bars_move_a_switch_dated_days_off_and_only_then():
    fb = TickerInterval("BBG000MM2P62", "FB", D(2012, 5, 18), D(2022, 6, 10))
    meta = TickerInterval("BBG000MM2P62", "META", D(2022, 6, 11), None)
    traded = {
        "FB": [D(2022, 6, 6), D(2022, 6, 7), D(2022, 6, 8)],
        # The earlier owner's META bars are far from the switch: they never count.
        "META": [D(2021, 12, 30), D(2022, 6, 9), D(2022, 6, 10), D(2022, 6, 13)],
    }
    moved = cross_check([fb, meta], traded)
    assert moved == [
        TickerInterval("BBG000MM2P62", "FB", D(2012, 5, 18), D(2022, 6, 8)),
        TickerInterval("BBG000MM2P62", "META", D(2022, 6, 9), None),
    ]
    assert cross_check(moved, traded) == moved  # idempotent
    assert cross_check([fb, meta], {"FB": traded["FB"]}) == [fb, meta]  # no bars: as dated


def test_a_ticker_row_without_a_ticker_is_left_out_with_the_reason():
    assert "without a ticker" in parse_ticker({"name": "x"})
    assert parse_ticker({"ticker": "A", "active": False}).active is False


def test_a_malformed_figi_is_treated_as_none():
    (sec,) = group_securities([row("ODD", "not-a-figi")])
    assert sec.security_id.startswith("md:") and sec.security().composite_figi is None


def test_the_vendors_ticker_rows_carry_when_they_last_changed(fixtures_dir):
    """`last_updated_utc` of the client's recorded ticker list (what the daily load's
    watermark is made of)."""
    body = json.loads(
        (fixtures_dir / "reference" / "v3_reference_tickers__client_mock.json").read_text()
    )
    rows = [parse_ticker(r) for r in body["results"]]
    assert {r.last_updated_utc for r in rows} == {dt.datetime(2022, 4, 27, tzinfo=dt.UTC)}
    assert parse_ticker({"ticker": "A", "last_updated_utc": "soon"}).last_updated_utc is None
