"""The simulator's cache of built pages: its bounds are live config, and they are honoured."""

from __future__ import annotations

import httpx
import pytest

from polygon_simulator import SimulatorServer
from polygon_simulator.pages import BodyCache

# Five sessions (Mon-Fri) before the suite's fixed "today"; a default-universe page (2,000
# tickers) is about 230 kB, so 1 MB holds four of them but not five.
DAYS = ("2025-05-19", "2025-05-20", "2025-05-21", "2025-05-22", "2025-05-23")


def _grouped(client: httpx.Client, day: str) -> None:
    client.get(f"/v2/aggs/grouped/locale/us/market/stocks/{day}").raise_for_status()


def _cache(sim: SimulatorServer) -> dict[str, int]:
    return sim.stats(include_log=False)["body_cache"]


def _emptied(sim: SimulatorServer, **bounds: int) -> None:
    """Drop what earlier tests cached (a 0 MB bound applies at once), then set `bounds`."""
    sim.configure(body_cache_mb=0)
    assert _cache(sim)["entries"] == 0
    sim.configure(**{"body_cache_mb": 192, **bounds})
    sim.reset()  # zero the hit/miss counters


def test_a_page_that_fits_is_served_from_the_cache_the_second_time(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    _emptied(sim, body_cache_mb=10)
    _grouped(client, DAYS[0])
    _grouped(client, DAYS[0])
    cache = _cache(sim)
    assert (cache["misses"], cache["hits"], cache["entries"]) == (1, 1, 1)
    assert cache["max_bytes"] == 10_000_000 and 0 < cache["bytes"] <= 10_000_000


def test_pages_beyond_the_size_bound_are_evicted_oldest_first(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    _emptied(sim, body_cache_mb=1)
    for day in DAYS:
        _grouped(client, day)
    cache = _cache(sim)
    assert cache["misses"] == 5 and cache["entries"] < 5 and cache["bytes"] <= 1_000_000
    _grouped(client, DAYS[-1])  # the newest still fits
    assert _cache(sim)["hits"] == 1
    _grouped(client, DAYS[0])  # the oldest was evicted: built again
    assert _cache(sim)["misses"] == 6


def test_the_entry_bound_is_honoured_and_a_zero_bound_caches_nothing(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    _emptied(sim, body_cache_entries=1)
    for day in (DAYS[0], DAYS[1], DAYS[0]):
        _grouped(client, day)
    assert (_cache(sim)["misses"], _cache(sim)["entries"]) == (3, 1)
    sim.configure(body_cache_mb=0, body_cache_entries=2048)
    _grouped(client, DAYS[0])
    _grouped(client, DAYS[0])
    assert (_cache(sim)["hits"], _cache(sim)["entries"]) == (0, 0)


def test_bounds_are_validated_and_reset_to_the_defaults(
    sim: SimulatorServer, client: httpx.Client
) -> None:
    for field, value in (("body_cache_mb", -1), ("body_cache_mb", 70_000)):
        answer = client.post("/_sim/config", json={field: value})
        assert answer.status_code == 400 and field in answer.json()["error"]
    assert client.post("/_sim/config", json={"body_cache_mb": 4000}).json()["body_cache_mb"] == 4000
    assert _cache(sim)["max_bytes"] == 4_000_000_000
    sim.reset(reset_config=True)
    assert (_cache(sim)["max_bytes"], _cache(sim)["max_entries"]) == (192_000_000, 2048)


@pytest.mark.parametrize(("entries", "size", "kept"), [(2, 100, 2), (10, 25, 2), (0, 100, 0)])
def test_resize_evicts_the_least_recently_used(entries: int, size: int, kept: int) -> None:
    cache = BodyCache(max_entries=10, max_chars=100)
    for key in "abc":
        cache.get_or_build(key, lambda k=key: k * 10, len)
    cache.get_or_build("a", lambda: "unused", len)  # "a" is now the most recently used
    cache.resize(entries, size)
    stats = cache.describe()
    assert (stats["entries"], stats["bytes"]) == (kept, 10 * kept)
    if kept:
        assert cache.get_or_build("a", lambda: "rebuilt", len) == "a" * 10
        assert cache.get_or_build("b", lambda: "rebuilt", len) == "rebuilt"


def test_a_zero_byte_bound_keeps_not_even_empty_pages() -> None:
    cache = BodyCache(max_entries=10, max_chars=100)
    cache.get_or_build("closed day", lambda: b"", len)
    cache.resize(10, 0)
    cache.get_or_build("another closed day", lambda: b"", len)
    assert cache.describe()["entries"] == 0
