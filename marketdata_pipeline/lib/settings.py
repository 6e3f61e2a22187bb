"""Settings read from the environment, validated, with the documented defaults.

| variable | meaning | default |
|---|---|---|
| POLYGON_API_KEY / MASSIVE_API_KEY | API key (header only, never logged) | unset |
| POLYGON_BASE_URL | API root | https://api.massive.com |
| POLYGON_REQUESTS_PER_MINUTE | client-side request budget | 5 |
| MARKETDATA_DATABASE_URL | Postgres URL of the candle store | embedded under .marketdata/ |
| MARKETDATA_START_DATE | first daily partition | 2020-01-01 |
| POLYGON_HISTORY_START | first day the key's plan serves (free tier: ~2 years back) | no limit |
| MARKETDATA_HOME | where the embedded Postgres and Dagster home live | <project>/.marketdata |
| MARKETDATA_REVISION_SESSIONS | trailing NYSE sessions the daily schedule re-fetches | 5 |
| MARKETDATA_SIMULATED | set to 1 by the command line when the API is its local simulator | unset |
| MARKETDATA_SIMULATOR_WORLD | set with it: the simulated market's name (in cache keys) | unset |
| MARKETDATA_CACHE_DIR | fetched pages kept until their rows are committed | <home>/cache |
| MARKETDATA_CACHE_MAX_AGE_DAYS | cached pages older than this are not reused | 7 |
| MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES | revision-window pages are reused this long | 60 |
| MARKETDATA_CACHE_MAX_MB | disk bound of the page cache (oldest evicted) | 4096 |
| MARKETDATA_SPOOL_DIR | a running backfill's validated chunks, until its write | <home>/spool |

This module is the edge: `load_settings()` is the one place that reads the environment. The code
location (`definitions.py`) and the command line call it once and pass the `Settings` down;
nothing below them reads `os.environ`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from marketdata_pipeline.lib.errors import ConfigError, InputError

DEFAULT_BASE_URL = "https://api.massive.com"
DEFAULT_REQUESTS_PER_MINUTE = 5
DEFAULT_START_DATE = dt.date(2020, 1, 1)
API_KEY_VARIABLES = ("POLYGON_API_KEY", "MASSIVE_API_KEY")
#: The earliest start the trading calendar (and Polygon's stock history) supports.
EARLIEST_START_DATE = dt.date(1990, 1, 2)
DEFAULT_REVISION_SESSIONS = 5
#: `DAGSTER_EVENT_BATCH_SIZE` for every process that runs candle assets (the code location, the
#: command line, `make dev`): a range run's per-partition events are then written in batches.
EVENT_BATCH_SIZE = "1000"
DEFAULT_CACHE_MAX_AGE_DAYS = 7
DEFAULT_CACHE_RECENT_MAX_AGE_MINUTES = 60
DEFAULT_CACHE_MAX_MB = 4096
#: The project's root (where pyproject.toml is), for the default store location.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_home() -> Path:
    """`<project>/.marketdata` when running from a checkout, else `./.marketdata`.

    The store belongs to the project, not to whatever directory a command runs from: a
    `marketdata symbols list` from another folder must find the same database.
    """
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / ".marketdata"
    return Path.cwd() / ".marketdata"


def parse_date(value: str, what: str) -> dt.date:
    """Parse a strict YYYY-MM-DD date or raise InputError naming `what`."""
    text = (value or "").strip()
    try:
        if len(text) != 10:
            raise ValueError
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {value!r} is not a date: expected YYYY-MM-DD") from None


def validate_base_url(value: str, what: str = "POLYGON_BASE_URL") -> str:
    """Return the API root without a trailing slash, or raise ConfigError explaining the rule."""
    parts = urlsplit((value or "").strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{what} {value!r} is not an http(s) URL with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{what} {value!r} must not carry a query, fragment or credentials")
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{what} {value!r} has an invalid port") from None
    return value.strip().rstrip("/")


def validate_requests_per_minute(
    value: str | int, what: str = "POLYGON_REQUESTS_PER_MINUTE"
) -> int:
    """Return a positive integer budget or raise ConfigError."""
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{what} {value!r} is not a whole number") from None
    if not 1 <= number <= 1_000_000:
        raise ConfigError(f"{what} {value!r} must be between 1 and 1000000")
    return number


def validate_database_url(value: str, what: str = "MARKETDATA_DATABASE_URL") -> str:
    """Check that `value` looks like a Postgres URL (connection is tried later)."""
    parts = urlsplit((value or "").strip())
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            f"{what} must be a postgresql:// URL, got scheme {parts.scheme or '(none)'!r}"
        )
    return value.strip()


_PASSWORD_PARAM = re.compile(r"((?:^|&)password=)[^&]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, for messages and logs."""
    parts = urlsplit(url)
    changed = False
    if parts.password:
        parts = parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@"))
        changed = True
    # libpq also takes the password as a query parameter (`?password=...`).
    query = _PASSWORD_PARAM.sub(r"\1***", parts.query)
    if query != parts.query:
        parts = parts._replace(query=query)
        changed = True
    return parts.geturl() if changed else url


@dataclass(frozen=True)
class Settings:
    """The validated environment."""

    api_key: str | None
    api_key_variable: str | None
    base_url: str
    requests_per_minute: int
    database_url: str | None
    start_date: dt.date
    home: Path
    revision_sessions: int = DEFAULT_REVISION_SESSIONS
    # POLYGON_BASE_URL was set explicitly (then a missing key is an error, not the simulator).
    base_url_configured: bool = False
    # The API is the local simulator (its rows are stored with source 'simulator').
    simulated: bool = False
    # DAGSTER_HOME as the user set it (None: ours, under `home`), and the instance storage URL
    # (MARKETDATA_DAGSTER_STORAGE_URL; None: derived from the candle store's server).
    dagster_home_override: Path | None = None
    dagster_storage_url: str | None = None
    #: First day the API key's plan serves (POLYGON_HISTORY_START); None = no limit.
    history_start: dt.date | None = None
    cache_dir_override: Path | None = None
    cache_max_age_days: int = DEFAULT_CACHE_MAX_AGE_DAYS
    cache_max_mb: int = DEFAULT_CACHE_MAX_MB
    spool_dir_override: Path | None = None
    cache_recent_max_age_minutes: int = DEFAULT_CACHE_RECENT_MAX_AGE_MINUTES
    # The built-in simulator's world (its answers' identity, whatever its port); None otherwise.
    simulator_world: str | None = None

    @property
    def cache_scope(self) -> str | None:
        """The API's identity in the page cache's keys: `simulator:<world>` for the built-in
        simulator (a new port every command, the same pages); None for any other API, which
        its base URL names."""
        if self.simulated and self.simulator_world:
            return f"simulator:{self.simulator_world}"
        return None

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance directory: DAGSTER_HOME, else `<home>/dagster_home`."""
        return self.dagster_home_override or self.home / "dagster_home"

    @property
    def cache_dir(self) -> Path:
        """Where fetched pages wait until their rows are committed (`MARKETDATA_CACHE_DIR`)."""
        return self.cache_dir_override or self.home / "cache"

    @property
    def spool_dir(self) -> Path:
        """Where a run's validated chunks wait for its write (`MARKETDATA_SPOOL_DIR`)."""
        return self.spool_dir_override or self.home / "spool"


def _bounded_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """`env[name]` as a whole number in low..high (default when unset), or ConfigError."""
    text = env.get(name, "").strip() or str(default)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"{name} {text!r} must be a whole number from {low} to {high}")
    return int(text)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise ConfigError/InputError naming the variable."""
    env = os.environ if env is None else env
    key_var = next((v for v in API_KEY_VARIABLES if env.get(v, "").strip()), None)
    try:
        start = (
            parse_date(env["MARKETDATA_START_DATE"], "MARKETDATA_START_DATE")
            if env.get("MARKETDATA_START_DATE", "").strip()
            else DEFAULT_START_DATE
        )
    except InputError as exc:
        # An environment variable is configuration (exit 3), not command input (exit 2).
        raise ConfigError(str(exc)) from None
    if start < EARLIEST_START_DATE:
        raise ConfigError(f"MARKETDATA_START_DATE {start} is before {EARLIEST_START_DATE}")
    history = env.get("POLYGON_HISTORY_START", "").strip()
    try:
        history_start = parse_date(history, "POLYGON_HISTORY_START") if history else None
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    db = env.get("MARKETDATA_DATABASE_URL", "").strip()
    sessions = env.get("MARKETDATA_REVISION_SESSIONS", "").strip() or str(DEFAULT_REVISION_SESSIONS)
    if not sessions.isdigit() or not 0 <= int(sessions) <= 250:
        raise ConfigError(
            f"MARKETDATA_REVISION_SESSIONS {sessions!r} must be a number from 0 to 250"
        )
    return Settings(
        api_key=env[key_var].strip() if key_var else None,
        api_key_variable=key_var,
        base_url=validate_base_url(env.get("POLYGON_BASE_URL") or DEFAULT_BASE_URL),
        requests_per_minute=validate_requests_per_minute(
            env.get("POLYGON_REQUESTS_PER_MINUTE") or DEFAULT_REQUESTS_PER_MINUTE
        ),
        database_url=validate_database_url(db) if db else None,
        start_date=start,
        home=Path(env.get("MARKETDATA_HOME") or default_home()).resolve(),
        revision_sessions=int(sessions),
        base_url_configured=bool(env.get("POLYGON_BASE_URL", "").strip()),
        simulated=env.get("MARKETDATA_SIMULATED", "").strip() == "1",
        dagster_home_override=(
            Path(env["DAGSTER_HOME"]).resolve() if env.get("DAGSTER_HOME", "").strip() else None
        ),
        dagster_storage_url=env.get("MARKETDATA_DAGSTER_STORAGE_URL", "").strip() or None,
        history_start=history_start,
        cache_dir_override=(
            Path(env["MARKETDATA_CACHE_DIR"].strip()).resolve()
            if env.get("MARKETDATA_CACHE_DIR", "").strip()
            else None
        ),
        cache_max_age_days=_bounded_int(
            env, "MARKETDATA_CACHE_MAX_AGE_DAYS", DEFAULT_CACHE_MAX_AGE_DAYS, 1, 365
        ),
        cache_max_mb=_bounded_int(
            env, "MARKETDATA_CACHE_MAX_MB", DEFAULT_CACHE_MAX_MB, 1, 10_000_000
        ),
        spool_dir_override=(
            Path(env["MARKETDATA_SPOOL_DIR"].strip()).resolve()
            if env.get("MARKETDATA_SPOOL_DIR", "").strip()
            else None
        ),
        cache_recent_max_age_minutes=_bounded_int(
            env,
            "MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES",
            DEFAULT_CACHE_RECENT_MAX_AGE_MINUTES,
            1,
            10_080,
        ),
        simulator_world=env.get("MARKETDATA_SIMULATOR_WORLD", "").strip() or None,
    )
