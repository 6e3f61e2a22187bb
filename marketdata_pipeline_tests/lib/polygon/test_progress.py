"""Estimates, progress lines with an ETA, and splitting a plan into chunks (pure logic)."""

from __future__ import annotations

import datetime as dt

import pytest

from marketdata_pipeline.lib.polygon.planner import plan_requests, split_plan
from marketdata_pipeline.lib.polygon.progress import Progress, duration_text, estimate
from marketdata_pipeline.lib.symbols import AssetClass, Symbol


def stocks(n: int) -> list[Symbol]:
    return [Symbol(f"S{i:05d}", AssetClass.STOCK) for i in range(n)]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.2, "under a second"),
        (12.4, "about 12 s"),
        (179, "about 3 min"),
        (60_480, "about 16 h 48 min"),
        (7200, "about 2 h"),
        (3 * 86_400 + 3600, "about 3 d 1 h"),
    ],
)
def test_durations_read_as_people_say_them(seconds: float, text: str):
    assert duration_text(seconds) == text


def test_a_market_history_estimate_names_requests_budget_and_time():
    # 10,000 stocks over 20 years: grouped daily, one request per session.
    plan = plan_requests(
        AssetClass.STOCK, stocks(10_000), dt.date(2005, 1, 3), dt.date(2024, 12, 31)
    )
    assert plan.strategy == "grouped"
    free = estimate(plan, 5)
    assert free.requests == len(plan.days) == 5_033
    assert free.bars == 10_000 * 5_033
    assert free.text == (
        "5,033 grouped requests at 5/min = about 16 h 47 min, up to 50,330,000 bars"
    )
    assert estimate(plan, 6_000).text.startswith("5,033 grouped requests at 6,000/min = about 50 s")
    empty = plan_requests(AssetClass.STOCK, stocks(3), dt.date(2024, 7, 6), dt.date(2024, 7, 7))
    assert estimate(empty, 5).requests == 0
    assert "nothing to request" in estimate(empty, 5).text


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str) -> None:
        self.lines.append(message)


def test_progress_is_bounded_and_carries_an_eta():
    now = [0.0]
    log = Log()
    progress = Progress(1_000, log, what="fetched symbols", max_lines=10, clock=lambda: now[0])
    for _ in range(1_000):
        now[0] += 0.5
        progress.advance()
    assert len(log.lines) == 10
    assert log.lines[0] == ("fetched symbols 100/1,000 (10%); elapsed about 50 s, ETA about 8 min")
    assert log.lines[-1] == "fetched symbols 1,000/1,000 (100%); elapsed about 8 min"


def test_a_split_plan_makes_the_same_requests_in_bounded_chunks():
    symbols = stocks(1_000)
    ranged = plan_requests(AssetClass.STOCK, symbols, dt.date(2024, 1, 1), dt.date(2024, 12, 31),
                           force="range")  # fmt: skip
    parts = split_plan(ranged, chunk_rows=25_200)  # 100 symbols x 252 sessions
    assert len(parts) == 10
    assert [s for p in parts for s in p.symbols] == list(ranged.symbols)
    assert all(p.range_window == ranged.range_window for p in parts)
    assert sum(p.cost for p in parts) == ranged.cost
    grouped = plan_requests(AssetClass.STOCK, symbols, dt.date(2024, 1, 1), dt.date(2024, 12, 31),
                            force="grouped")  # fmt: skip
    parts = split_plan(grouped, chunk_rows=20_000)  # 20 sessions x 1,000 symbols
    assert [d for p in parts for d in p.days] == list(grouped.days)
    assert all(len(p.days) <= 20 and p.symbols == grouped.symbols for p in parts)
    assert all(p.start == p.days[0] and p.end == p.days[-1] for p in parts)
    assert sum(p.cost for p in parts) == grouped.cost
