"""`Settings`: the validated environment, as a frozen pydantic-settings model.

Each field names its variable (`validation_alias`) and applies its rule (`RULES` of
`lib/settings.py`, which raise `ConfigError` naming the variable, so pydantic passes them through
unchanged). A blank variable counts as unset. Built once at the edge (`load_settings`): the
resources receive typed, validated values and do not validate them again.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from marketdata_pipeline.lib.settings import (
    API_KEY_VARIABLES,
    DEFAULT_BASE_URL,
    DEFAULT_CACHE_MAX_AGE_DAYS,
    DEFAULT_CACHE_MAX_MB,
    DEFAULT_CACHE_RECENT_MAX_AGE_MINUTES,
    DEFAULT_REQUESTS_PER_MINUTE,
    DEFAULT_REVISION_SESSIONS,
    DEFAULT_START_DATE,
    default_home,
    rule,
)


def _checked(variable: str) -> BeforeValidator:
    """The variable's rule from `RULES` (lib/settings.py), as the field's validator."""
    return BeforeValidator(rule(variable))


#: Set while `from_mapping` builds settings: the process environment is not read then.
_ONLY_GIVEN: contextvars.ContextVar[bool] = contextvars.ContextVar("only_given", default=False)


class Settings(BaseSettings):
    """The validated environment (see `lib/settings.py` for the variables and defaults)."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        case_sensitive=True,
        env_ignore_empty=True,
        # The defaults are right by construction; the rules are for what the environment says.
        validate_default=False,
        populate_by_name=True,
    )

    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices(*API_KEY_VARIABLES)
    )
    #: Which variable held the key (resources pass it on as a `dg.EnvVar`, never the value).
    api_key_variable: str | None = None
    #: POLYGON_BASE_URL was set explicitly (then a missing key is an error, not the simulator).
    base_url_configured: bool = False
    # Each field below: its type, the rule of its variable, its default, its variable.
    base_url: Annotated[str, _checked("POLYGON_BASE_URL")] = Field(
        DEFAULT_BASE_URL, validation_alias="POLYGON_BASE_URL"
    )
    requests_per_minute: Annotated[int, _checked("POLYGON_REQUESTS_PER_MINUTE")] = Field(
        DEFAULT_REQUESTS_PER_MINUTE, validation_alias="POLYGON_REQUESTS_PER_MINUTE"
    )
    #: First day the API key's plan serves; None = no limit.
    history_start: Annotated[dt.date | None, _checked("POLYGON_HISTORY_START")] = Field(
        None, validation_alias="POLYGON_HISTORY_START"
    )
    database_url: Annotated[str | None, _checked("MARKETDATA_DATABASE_URL")] = Field(
        None, validation_alias="MARKETDATA_DATABASE_URL"
    )
    start_date: Annotated[dt.date, _checked("MARKETDATA_START_DATE")] = Field(
        DEFAULT_START_DATE, validation_alias="MARKETDATA_START_DATE"
    )
    home: Annotated[Path, _checked("MARKETDATA_HOME")] = Field(
        default_factory=lambda: default_home().resolve(), validation_alias="MARKETDATA_HOME"
    )
    revision_sessions: Annotated[int, _checked("MARKETDATA_REVISION_SESSIONS")] = Field(
        DEFAULT_REVISION_SESSIONS, validation_alias="MARKETDATA_REVISION_SESSIONS"
    )
    #: The API is the local simulator (its rows are stored with source 'simulator').
    simulated: Annotated[bool, _checked("MARKETDATA_SIMULATED")] = Field(
        False, validation_alias="MARKETDATA_SIMULATED"
    )
    #: The built-in simulator's world (its answers' identity, whatever its port).
    simulator_world: Annotated[str | None, _checked("MARKETDATA_SIMULATOR_WORLD")] = Field(
        None, validation_alias="MARKETDATA_SIMULATOR_WORLD"
    )
    #: DAGSTER_HOME as the user set it (None: ours, under `home`).
    dagster_home_override: Annotated[Path | None, _checked("DAGSTER_HOME")] = Field(
        None, validation_alias="DAGSTER_HOME"
    )
    #: The instance storage URL (None: derived from the candle store's server).
    dagster_storage_url: Annotated[str | None, _checked("MARKETDATA_DAGSTER_STORAGE_URL")] = Field(
        None, validation_alias="MARKETDATA_DAGSTER_STORAGE_URL"
    )
    cache_dir_override: Annotated[Path | None, _checked("MARKETDATA_CACHE_DIR")] = Field(
        None, validation_alias="MARKETDATA_CACHE_DIR"
    )
    cache_max_age_days: Annotated[int, _checked("MARKETDATA_CACHE_MAX_AGE_DAYS")] = Field(
        DEFAULT_CACHE_MAX_AGE_DAYS, validation_alias="MARKETDATA_CACHE_MAX_AGE_DAYS"
    )
    cache_max_mb: Annotated[int, _checked("MARKETDATA_CACHE_MAX_MB")] = Field(
        DEFAULT_CACHE_MAX_MB, validation_alias="MARKETDATA_CACHE_MAX_MB"
    )
    cache_recent_max_age_minutes: Annotated[
        int, _checked("MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES")
    ] = Field(
        DEFAULT_CACHE_RECENT_MAX_AGE_MINUTES,
        validation_alias="MARKETDATA_CACHE_RECENT_MAX_AGE_MINUTES",
    )
    spool_dir_override: Annotated[Path | None, _checked("MARKETDATA_SPOOL_DIR")] = Field(
        None, validation_alias="MARKETDATA_SPOOL_DIR"
    )

    @model_validator(mode="before")
    @classmethod
    def _which_variables(cls, data: Any) -> Any:
        """Record which key variable was set (the first of API_KEY_VARIABLES), and whether
        POLYGON_BASE_URL was: facts about the environment, not values of it."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        variable = next((v for v in API_KEY_VARIABLES if str(data.get(v, "")).strip()), None)
        if variable is not None:
            data["api_key_variable"] = variable
            data[variable] = str(data[variable]).strip()
            # The first variable wins, as documented, whichever alias pydantic tries first.
            for other in API_KEY_VARIABLES:
                if other != variable:
                    data.pop(other, None)
        if str(data.get("POLYGON_BASE_URL", "")).strip():
            data["base_url_configured"] = True
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The process environment, or only the mapping given to `from_mapping`."""
        if _ONLY_GIVEN.get():
            return (init_settings,)
        return (init_settings, env_settings)

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> Settings:
        """The settings of `env` as if it were the whole environment (blank values unset)."""
        token = _ONLY_GIVEN.set(True)
        try:
            return cls(**{k: v for k, v in env.items() if v and v.strip()})
        finally:
            _ONLY_GIVEN.reset(token)

    def api_key_value(self) -> str | None:
        """The key itself, for the one place that sends it (the request header)."""
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def with_database(self, url: str) -> Settings:
        """The same settings with the store at `url` (the embedded server, once started)."""
        return self.model_copy(update={"database_url": url})

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
