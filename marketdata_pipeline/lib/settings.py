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

`Settings` is a frozen pydantic-settings model (`lib/settings_model.py`): each variable is read,
validated and typed once, and the key is a `SecretStr`. This module holds the rules it applies
(plain functions, also used where a value comes from run config) and is cheap to import:
pydantic-settings costs ~0.25 s to import, more than the whole of `marketdata symbols list`'s
0.3 s goal, so the commands that only need the store (`symbols`, `db`, `coverage`) read its
location alone (`store_location`, after checking the whole environment by the same `RULES`),
and `Settings` is imported on first use.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from marketdata_pipeline.lib.errors import ConfigError, InputError

if TYPE_CHECKING:
    from marketdata_pipeline.lib.settings_model import Settings

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


def config_date(value: str, what: str) -> dt.date:
    """`parse_date` for a setting: a bad date is configuration (exit 3), not input (exit 2)."""
    try:
        return parse_date(value, what)
    except InputError as exc:
        raise ConfigError(str(exc)) from None


def bounded_int(value: str | int, what: str, low: int, high: int) -> int:
    """`value` as a whole number in low..high, or ConfigError naming `what`."""
    text = str(value).strip()
    if not text.isdigit() or not low <= int(text) <= high:
        raise ConfigError(f"{what} {text!r} must be a whole number from {low} to {high}")
    return int(text)


def present(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of `env` that hold something (a blank variable counts as unset)."""
    return {name: value for name, value in env.items() if value and value.strip()}


def resolved_path(value: Any) -> Path:
    """A configured directory as an absolute path."""
    return Path(str(value).strip()).resolve()


def _start_date(value: str) -> dt.date:
    start = config_date(value, "MARKETDATA_START_DATE")
    if start < EARLIEST_START_DATE:
        raise ConfigError(f"MARKETDATA_START_DATE {start} is before {EARLIEST_START_DATE}")
    return start


def _revision_sessions(value: str) -> int:
    text = str(value).strip()
    if not text.isdigit() or not 0 <= int(text) <= 250:
        raise ConfigError(f"MARKETDATA_REVISION_SESSIONS {text!r} must be a number from 0 to 250")
    return int(text)


def _text(value: str) -> str:
    return str(value).strip()


#: The rule of each variable (raising ConfigError naming it), in one place: `Settings` applies
#: it to its field, `check_environment` to the environment of the commands that need less.
RULES: dict[str, Callable[[str], Any]] = {
    "POLYGON_BASE_URL": lambda v: validate_base_url(v, "POLYGON_BASE_URL"),
    "POLYGON_REQUESTS_PER_MINUTE": validate_requests_per_minute,
    "POLYGON_HISTORY_START": lambda v: config_date(v, "POLYGON_HISTORY_START"),
    "MARKETDATA_DATABASE_URL": validate_database_url,
    "MARKETDATA_START_DATE": _start_date,
    "MARKETDATA_HOME": resolved_path,
    "MARKETDATA_REVISION_SESSIONS": _revision_sessions,
    "MARKETDATA_SIMULATED": lambda v: v.strip() == "1",
    "MARKETDATA_SIMULATOR_WORLD": _text,
    "DAGSTER_HOME": resolved_path,
    "MARKETDATA_DAGSTER_STORAGE_URL": _text,
    "MARKETDATA_CACHE_DIR": resolved_path,
    "MARKETDATA_CACHE_MAX_AGE_DAYS": lambda v: bounded_int(
        v, "MARKETDATA_CACHE_MAX_AGE_DAYS", 1, 365
    ),
    "MARKETDATA_CACHE_MAX_MB": lambda v: bounded_int(v, "MARKETDATA_CACHE_MAX_MB", 1, 10_000_000),
    "MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES": lambda v: bounded_int(
        v, "MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES", 1, 10_080
    ),
    "MARKETDATA_SPOOL_DIR": resolved_path,
}


def rule(variable: str) -> Callable[[Any], Any]:
    """`RULES[variable]` for a raw value; a value of the field's own type passes as it is."""
    check = RULES[variable]

    def apply(value: Any) -> Any:
        return check(value) if isinstance(value, str) else value

    return apply


def check_environment(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every known variable set in `env` (default: the process's), checked by its rule, as its
    value: what `Settings` would refuse is refused here too."""
    env = present(os.environ if env is None else env)
    return {name: check(env[name]) for name, check in RULES.items() if name in env}


@dataclass(frozen=True)
class StoreLocation:
    """Where the candle store and the Dagster instance are: the part of the settings that the
    store-only commands need (`symbols`, `db`, `coverage`), without importing pydantic."""

    database_url: str | None
    home: Path
    dagster_home_override: Path | None = None
    dagster_storage_url: str | None = None

    @property
    def dagster_home(self) -> Path:
        """The Dagster instance directory: DAGSTER_HOME, else `<home>/dagster_home`."""
        return self.dagster_home_override or self.home / "dagster_home"

    def with_database(self, url: str) -> StoreLocation:
        """The same location with the store at `url` (the embedded server, once started)."""
        return replace(self, database_url=url)


def store_location(env: Mapping[str, str] | None = None) -> StoreLocation:
    """Where the store is, from an environment checked whole (`check_environment`)."""
    values = check_environment(env)
    return StoreLocation(
        database_url=values.get("MARKETDATA_DATABASE_URL"),
        home=values.get("MARKETDATA_HOME") or default_home().resolve(),
        dagster_home_override=values.get("DAGSTER_HOME"),
        dagster_storage_url=values.get("MARKETDATA_DAGSTER_STORAGE_URL"),
    )


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment (`env` instead, when given); raise ConfigError naming
    the variable."""
    from marketdata_pipeline.lib.settings_model import Settings

    if env is None:
        return Settings()
    # A mapping stands for the whole environment: the process's own variables are not read.
    return Settings.from_mapping(env)


def __getattr__(name: str) -> Any:
    # `from marketdata_pipeline.lib.settings import Settings` works, loading pydantic then.
    if name == "Settings":
        from marketdata_pipeline.lib.settings_model import Settings

        return Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
