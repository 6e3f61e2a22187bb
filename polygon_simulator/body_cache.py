"""The bounded cache of built pages: the `results` JSON of range and grouped answers.

Serialising thousands of bars dominates a request's cost, so pages.py caches each page's
`results` text here per (ticker, days, sort, limit, revision, ...); the bounds are the
simulator's live config (see config.py `body_cache_mb`, `body_cache_entries`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


class BodyCache:
    """A thread-safe LRU of JSON texts bounded by entry count and total size.

    The default size holds ten years of bars for ~550 tickers (~330 kB each), so a benchmark
    that backfills a few hundred symbols twice is served from the cache the second time. The
    bounds are the simulator's live config (`body_cache_mb`, `body_cache_entries`): a whole
    market's grouped page is ~1.5 MB, so ten years of them (2,516 pages) need about 4 GB.
    """

    def __init__(self, max_entries: int = 2048, max_chars: int = 192_000_000) -> None:
        """Create an empty cache with the given bounds."""
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._lock = threading.Lock()
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._chars = 0
        self.hits = 0
        self.misses = 0

    def get_or_build(self, key: Any, build: Callable[[], Any], size: Callable[[Any], int]) -> Any:
        """The cached value for `key`, or `build()` stored (building happens outside the lock)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key][0]
            self.misses += 1
        value = build()
        with self._lock:
            if key not in self._items:
                self._items[key] = (value, size(value))
                self._chars += self._items[key][1]
                self._evict()
        return value

    def _evict(self) -> None:
        """Drop the least recently used entries until both bounds hold (lock held)."""
        # A zero byte bound caches nothing, not even the empty pages of closed days (size 0).
        while self._items and (
            len(self._items) > self.max_entries
            or self._chars > self.max_chars
            or self.max_chars == 0
        ):
            _, (_, old_size) = self._items.popitem(last=False)
            self._chars -= old_size

    def resize(self, max_entries: int, max_chars: int) -> None:
        """Change the bounds, evicting the least recently used entries that no longer fit."""
        with self._lock:
            self.max_entries = max_entries
            self.max_chars = max_chars
            self._evict()

    def describe(self) -> dict[str, int]:
        """Bounds, contents and the hit/miss counters (since the last `reset_counters`)."""
        with self._lock:
            return {
                "max_entries": self.max_entries,
                "max_bytes": self.max_chars,
                "entries": len(self._items),
                "bytes": self._chars,
                "hits": self.hits,
                "misses": self.misses,
            }

    def reset_counters(self) -> None:
        """Zero the hit/miss counters (the contents stay)."""
        with self._lock:
            self.hits = 0
            self.misses = 0

    def clear(self) -> None:
        """Drop everything."""
        with self._lock:
            self._items.clear()
            self._chars = 0
