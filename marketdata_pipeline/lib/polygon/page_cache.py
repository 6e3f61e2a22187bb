"""`PageCache`: successful API pages kept on local disk, so a killed backfill resumes.

A free-tier history backfill is thousands of requests at 5 a minute. If the process dies (a
kill, an OOM, a restart) nothing of the run reaches the store, and without this cache the rerun
would pay for every request again. With it, each successful response body is written to disk as
it arrives, and the rerun reads the same request's page from disk instead of the network.

What keeps it safe:

- **Same request only.** The key hashes the API's identity, the path, every query parameter
  (`adjusted`, `limit`, `sort`, a pagination cursor) and a hash of the API key, so two keys
  (two plans) never share pages and an unadjusted request never reads an adjusted page. The
  identity is the API root, or for the built-in simulator its world (`scope`): the command line
  starts that one on a new port each time, and its pages are the same on every port.
- **The revision window only briefly.** A request whose days reach past `fresh_after` (the
  recent sessions the vendor may still revise) is reused for `recent_max_age` only (an hour by
  default), then fetched fresh: a rerun minutes after a kill is served what the killed run
  fetched, a run days later sees the vendor's revisions. Without `fresh_after` every page counts
  as recent.
- **Refreshed on demand.** Inside `collect(refresh=True)` nothing is read from the cache: what
  is fetched there (the split repair) must be the vendor's answer now.
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
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from marketdata_pipeline.lib.polygon.paths import last_day_of

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE = dt.timedelta(days=7)
#: How long a page reaching into the revision window is reused (a kill's rerun, not a revision).
DEFAULT_RECENT_MAX_AGE = dt.timedelta(hours=1)
DEFAULT_MAX_BYTES = 4 * 1024**3
_SUFFIX = ".page"
_TMP_PREFIX = ".tmp-"
#: A temporary file this old was left by a killed writer (a page write takes milliseconds).
_STALE_TMP_SECONDS = 600


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
        scope: str | None = None,
        fresh_after: dt.date | None = None,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        recent_max_age: dt.timedelta = DEFAULT_RECENT_MAX_AGE,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """`scope` names the API in the keys instead of `base_url` (the built-in simulator's
        world, the same on every port)."""
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.directory = Path(directory)
        self.fresh_after = fresh_after
        self.max_age = max_age
        self.recent_max_age = min(recent_max_age, max_age)
        self.max_bytes = max_bytes
        self.stats = CacheStats()
        identity = scope or base_url.rstrip("/")
        # Only a hash of the key is mixed into the page keys: the key itself never reaches disk.
        self._key_scope = hashlib.sha256(
            f"{hashlib.sha256(api_key.encode()).hexdigest()}\n{identity}".encode()
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
        """True when the request's days are known (an aggregates page)."""
        return last_day_of(path) is not None

    def max_age_of(self, path: str) -> dt.timedelta:
        """How long the page of `path` is reused: `max_age`, or `recent_max_age` when its days
        reach past `fresh_after` (the revision window)."""
        last = last_day_of(path)
        if self.fresh_after is not None and last is not None and last <= self.fresh_after:
            return self.max_age
        return self.recent_max_age

    def _file(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}{_SUFFIX}"

    @contextlib.contextmanager
    def collect(self, *, refresh: bool = False) -> Iterator[list[str]]:
        """Collect the keys this thread reads or stores inside the block (for `forget`).

        `refresh`: read nothing from the cache inside the block (every request goes out);
        what arrives is still stored, replacing an older page of the same request.
        """
        previous = getattr(self._local, "keys", None), getattr(self._local, "refresh", False)
        keys: list[str] = []
        self._local.keys, self._local.refresh = keys, refresh
        try:
            yield keys
        finally:
            self._local.keys, self._local.refresh = previous

    def _note(self, key: str) -> None:
        keys = getattr(self._local, "keys", None)
        if keys is not None:
            keys.append(key)

    # -- read, write, forget -----------------------------------------------------------------

    def load(self, path: str, params: Mapping[str, str] | None) -> bytes | None:
        """The stored body of this request, or None (not cacheable, refreshing, absent, too old,
        unreadable)."""
        found = self.load_page(path, params)
        return found[0] if found is not None else None

    def load_page(
        self, path: str, params: Mapping[str, str] | None
    ) -> tuple[bytes, dt.datetime] | None:
        """`load`'s body and when it was stored (when the vendor sent it), or None."""
        if not self.cacheable(path) or getattr(self._local, "refresh", False):
            return None
        key = self.key(path, params)
        file = self._file(key)
        try:
            stored = file.stat().st_mtime
            age = time.time() - stored
            if age > self.max_age_of(path).total_seconds():
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
        return body, dt.datetime.fromtimestamp(stored, dt.UTC)

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
