"""`PageCache`: successful API pages kept on local disk, so a killed backfill resumes.

A free-tier history backfill is thousands of requests at 5 a minute. If the process dies (a
kill, an OOM, a restart) nothing of the run reaches the store, and without this cache the rerun
would pay for every request again. With it, each successful response body is written to disk as
it arrives, and the rerun reads the same request's page from disk instead of the network.

What keeps it safe:

- **Same request only.** The key hashes the API root, the path, every query parameter
  (`adjusted`, `limit`, `sort`, a pagination cursor) and a hash of the API key, so two keys
  (two plans) never share pages and an unadjusted request never reads an adjusted page.
- **Never the revision window.** A request whose days reach past `fresh_after` (the recent
  sessions the vendor may still revise) is neither read from nor written to the cache.
- **Bounded.** Pages older than `max_age` are ignored and removed; past `max_bytes` the oldest
  pages are evicted. Only 200 responses that parsed are stored.
- **Atomic.** A page is written to a temporary file and renamed into place, so a kill mid-write
  leaves no half page that a rerun could read.
- **Removed after success.** Once the run's rows are committed, the pages behind them are
  forgotten (`forget`): the cache only ever holds work that has not reached the store yet.

Pages are stored zlib-compressed (a whole-market grouped page is about 1.5 MB of JSON and
compresses about 5x at level 1, which costs ~5 ms).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = dt.timedelta(days=7)
DEFAULT_MAX_BYTES = 4 * 1024**3
_SUFFIX = ".page"
_TMP_PREFIX = ".tmp-"
#: A temporary file this old was left by a killed writer (a page write takes milliseconds).
_STALE_TMP_SECONDS = 600
_MS_PER_DAY = 86_400_000
# `/v2/aggs/ticker/{T}/range/1/day/{from}/{to}` (from/to: dates or ms timestamps, the latter in
# `next_url` pages) and `/v2/aggs/grouped/locale/{l}/market/{m}/{date}`.
_RANGE_PATH = re.compile(r"/range/\d+/\w+/([^/]+)/([^/?]+)$")
_GROUPED_PATH = re.compile(r"/grouped/locale/[^/]+/market/[^/]+/([^/?]+)$")


def _as_date(text: str) -> dt.date | None:
    """A path's date: YYYY-MM-DD or a Unix ms timestamp (UTC day); None when neither."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    if text.isdigit():
        return dt.date(1970, 1, 1) + dt.timedelta(days=int(text) // _MS_PER_DAY)
    return None


def last_day_of(path: str) -> dt.date | None:
    """The last day an aggregates request covers, read from its path (None: unknown)."""
    if match := _RANGE_PATH.search(path):
        return _as_date(match.group(2))
    if match := _GROUPED_PATH.search(path):
        return _as_date(match.group(1))
    return None


@dataclass
class CacheStats:
    """What the cache did in this process: pages reused from disk and pages stored."""

    reused: int = 0
    stored: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, reused: int = 0, stored: int = 0) -> None:
        """Add to the counters (thread safe)."""
        with self._lock:
            self.reused += reused
            self.stored += stored


class PageCache:
    """Response bodies on disk under `directory`, keyed by request (see the module docstring).

    Thread safe: the worker threads of one fetch share it. Several processes may share a
    directory: writes are atomic renames and a missing file is just a miss.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        api_key: str,
        base_url: str,
        fresh_after: dt.date | None = None,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.fresh_after = fresh_after
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        # Only a hash of the key is mixed into the page keys: the key itself never reaches disk.
        self._key_scope = hashlib.sha256(
            f"{hashlib.sha256(api_key.encode()).hexdigest()}\n{base_url.rstrip('/')}".encode()
        ).hexdigest()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._bytes: int | None = None  # running total, measured on first store

    # -- keys --------------------------------------------------------------------------------

    def key(self, path: str, params: Mapping[str, str] | None) -> str:
        """The cache key of one request: a hash of key scope, path and sorted query."""
        query = "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        return hashlib.sha256(f"{self._key_scope}\n{path}?{query}".encode()).hexdigest()

    def cacheable(self, path: str) -> bool:
        """True when the request's days are known and all on or before `fresh_after`."""
        last = last_day_of(path)
        if last is None:
            return False
        return self.fresh_after is not None and last <= self.fresh_after

    def _file(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{_SUFFIX}"

    @contextlib.contextmanager
    def collect(self) -> Iterator[list[str]]:
        """Collect the keys this thread reads or stores inside the block (for `forget`)."""
        previous = getattr(self._local, "keys", None)
        keys: list[str] = []
        self._local.keys = keys
        try:
            yield keys
        finally:
            self._local.keys = previous

    def _note(self, key: str) -> None:
        keys = getattr(self._local, "keys", None)
        if keys is not None:
            keys.append(key)

    # -- read, write, forget -----------------------------------------------------------------

    def load(self, path: str, params: Mapping[str, str] | None) -> bytes | None:
        """The stored body of this request, or None (not cacheable, absent, too old, unreadable)."""
        if not self.cacheable(path):
            return None
        key = self.key(path, params)
        file = self._file(key)
        try:
            age = time.time() - file.stat().st_mtime
            if age > self.max_age.total_seconds():
                self._remove(file)
                return None
            body = zlib.decompress(file.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, zlib.error) as exc:
            # A damaged page is a miss, never an error: the network has the real answer.
            log.warning(f"page cache: ignoring unreadable {file.name} ({exc.__class__.__name__})")
            self._remove(file)
            return None
        self._note(key)
        self.stats.count(reused=1)
        return body

    def store(self, path: str, params: Mapping[str, str] | None, body: bytes) -> None:
        """Keep a successful response body (atomically); a disk problem only logs a warning."""
        if not self.cacheable(path):
            return
        key = self.key(path, params)
        file = self._file(key)
        data = zlib.compress(body, 1)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(dir=file.parent, prefix=_TMP_PREFIX)
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(tmp, file)
        except OSError as exc:
            log.warning(f"page cache: could not store a page in {self.directory} ({exc})")
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)
            return
        self._note(key)
        self.stats.count(stored=1)
        self._account(len(data))

    def forget(self, keys: Iterable[str]) -> int:
        """Remove the pages of `keys` (after their rows were committed); return how many."""
        removed = 0
        for key in set(keys):
            if self._remove(self._file(key)):
                removed += 1
        return removed

    def clear(self) -> int:
        """Remove every page (and leftover temporary files); return how many pages."""
        self._remove_temporaries(older_than=0)
        return sum(self._remove(file) for file in self._pages())

    def size_bytes(self) -> int:
        """Bytes of the stored pages."""
        return sum(size for _, size, _ in self._entries())

    def page_count(self) -> int:
        """Number of stored pages."""
        return sum(1 for _ in self._pages())

    # -- bounds ------------------------------------------------------------------------------

    def _pages(self) -> Iterator[Path]:
        if self.directory.is_dir():
            yield from self.directory.glob(f"??/*{_SUFFIX}")

    def _remove_temporaries(self, older_than: float) -> None:
        """Remove temporary files a killed writer left behind."""
        if not self.directory.is_dir():
            return
        now = time.time()
        for file in self.directory.glob(f"??/{_TMP_PREFIX}*"):
            with contextlib.suppress(OSError):
                if now - file.stat().st_mtime >= older_than:
                    file.unlink()

    def _entries(self) -> Iterator[tuple[Path, int, float]]:
        for file in self._pages():
            try:
                info = file.stat()
            except FileNotFoundError:
                continue
            yield file, info.st_size, info.st_mtime

    def _remove(self, file: Path) -> bool:
        try:
            size = file.stat().st_size
            file.unlink()
        except FileNotFoundError:
            return False
        with self._lock:
            if self._bytes is not None:
                self._bytes -= size
        return True

    def _account(self, added: int) -> None:
        """Keep a running total; past `max_bytes`, drop expired then oldest pages."""
        with self._lock:
            if self._bytes is None:
                # First store of this process: a killed predecessor may have left temporaries.
                self._remove_temporaries(older_than=_STALE_TMP_SECONDS)
                self._bytes = self.size_bytes()
            else:
                self._bytes += added
            if self._bytes <= self.max_bytes:
                return
        self.evict()

    def evict(self) -> int:
        """Remove expired pages, then the oldest until under `max_bytes`; return how many."""
        self._remove_temporaries(older_than=_STALE_TMP_SECONDS)
        now = time.time()
        entries = sorted(self._entries(), key=lambda entry: entry[2])
        total = sum(size for _, size, _ in entries)
        removed = 0
        for file, size, mtime in entries:
            if total <= self.max_bytes and now - mtime <= self.max_age.total_seconds():
                continue
            with contextlib.suppress(FileNotFoundError):
                file.unlink()
                removed += 1
                total -= size
        with self._lock:
            self._bytes = total
        return removed
