"""`split_candidate_steps`: the steps Postgres pre-selects give exactly the answer of
`split_like_moves` over every stored bar, at the threshold's edges too."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import psycopg

from marketdata_pipeline.lib.candles.corporate_actions import (
    MIN_LOG_RATIO,
    classify_steps,
    split_like_moves,
)
from marketdata_pipeline.lib.postgres.corporate_actions import split_candidate_steps, split_events

START, END = dt.date(2024, 3, 1), dt.date(2024, 3, 29)
EDGE = math.exp(MIN_LOG_RATIO)


def bars() -> pl.DataFrame:
    """Four symbols of daily bars: quiet, a 2-for-1 split (with its event), a move right at
    the threshold up and down, a 3-for-1 step without an event, a crash, and a zero close."""
    days = pl.date_range(dt.date(2024, 2, 20), END, eager=True).to_list()
    rows = []
    for symbol, steps in {
        "QUIET": {},
        "SPLIT": {dt.date(2024, 3, 11): 0.5},
        "EDGE": {dt.date(2024, 3, 5): EDGE, dt.date(2024, 3, 6): 1 / EDGE,
                 dt.date(2024, 3, 7): EDGE * 0.999, dt.date(2024, 3, 8): 1.0005 / EDGE},
        "ODD": {dt.date(2024, 3, 4): 1 / 3, dt.date(2024, 3, 13): 0.4,
                dt.date(2024, 3, 20): 0.0, dt.date(2024, 3, 21): 1.0},
    }.items():  # fmt: skip
        close = 100.0
        for day in days:
            factor = steps.get(day, 1.0)
            close = close * factor if factor else 0.0
            if factor == 1.0 and day in steps:
                close = 100.0  # back from zero
            volume = 1e6 / factor if factor else 1e6
            open_ = close * (1.01 if day != dt.date(2024, 3, 13) else 2.5)
            rows.append((symbol, day, open_, close, volume))
    return pl.DataFrame(
        rows, schema=["symbol", "day", "open", "close", "volume"], orient="row"
    ).with_columns(pl.col("day").cast(pl.Date))


def test_the_database_candidates_give_the_same_classification_as_every_bar(database_url):
    frame = bars()
    with psycopg.connect(database_url) as conn:
        with conn.cursor().copy(
            "COPY marketdata.stock_daily_candles (symbol, day, ts, open, high, low, close,"
            " volume, adjusted, source, fetched_at) FROM STDIN"
        ) as copy:
            for symbol, day, open_, close, volume in frame.iter_rows():
                top, bottom = max(open_, close), min(open_, close)
                ts, fetched = f"{day} 05:00+00", "2024-04-01 00:00+00"
                copy.write_row((symbol, day, ts, open_, top, bottom, close, volume, True,
                                "simulator:range", fetched))  # fmt: skip
        conn.execute(
            "INSERT INTO marketdata.stock_splits (symbol, execution_date, split_from, split_to,"
            " source, fetched_at) VALUES ('SPLIT', '2024-03-11', 1, 2, 'simulator', now())"
        )
        symbols = ["EDGE", "ODD", "QUIET", "SPLIT"]
        read_from = START - dt.timedelta(days=14)
        steps = split_candidate_steps(conn, symbols, read_from, END, MIN_LOG_RATIO)
        events = split_events(conn, symbols, START, END)
    expected = split_like_moves(frame.filter(pl.col("day") >= read_from), events)
    got = classify_steps(steps, events)
    assert got.equals(expected)
    verdicts = {(r["symbol"], r["day"]): r["verdict"] for r in got.iter_rows(named=True)}
    assert verdicts[("SPLIT", dt.date(2024, 3, 11))] == "split_event"
    assert verdicts[("ODD", dt.date(2024, 3, 4))] == "possible_unrecorded_split"
    assert verdicts[("ODD", dt.date(2024, 3, 13))] == "price_move"
    # The database sent far fewer steps than there are bars, and no quiet one.
    assert steps.height < frame.height // 4
    assert "QUIET" not in steps["symbol"].to_list()
