"""`Settings` (pydantic-settings) and the light `store_location` apply one table of rules."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketdata_pipeline.lib.errors import ConfigError
from marketdata_pipeline.lib.settings import RULES, load_settings, store_location
from marketdata_pipeline.lib.settings_model import Settings
from marketdata_pipeline_tests.reliability.test_bad_input import BAD_CONFIG


def test_every_rule_is_a_field_and_every_variable_field_has_its_rule():
    aliases = {
        field.validation_alias
        for field in Settings.model_fields.values()
        if isinstance(field.validation_alias, str)
    }
    assert aliases == set(RULES)


@pytest.mark.parametrize(("env", "expected"), BAD_CONFIG.values(), ids=BAD_CONFIG.keys())
def test_the_store_only_commands_refuse_what_settings_refuse(env, expected):
    with pytest.raises(ConfigError, match=expected) as whole:
        load_settings(env)
    with pytest.raises(ConfigError, match=expected) as light:
        store_location(env)
    assert str(light.value) == str(whole.value)


def test_the_key_is_secret_and_the_settings_frozen(tmp_path):
    settings = load_settings({"MASSIVE_API_KEY": " sekrit ", "MARKETDATA_HOME": str(tmp_path)})
    assert settings.api_key_variable == "MASSIVE_API_KEY"
    assert settings.api_key_value() == "sekrit"
    assert "sekrit" not in repr(settings) and "sekrit" not in str(settings.model_dump())
    with pytest.raises(ValidationError):
        settings.home = tmp_path / "other"  # type: ignore[misc]
    location = store_location({"MARKETDATA_HOME": str(tmp_path)})
    assert (location.home, location.dagster_home) == (settings.home, settings.dagster_home)


def test_a_mapping_is_the_whole_environment(monkeypatch):
    monkeypatch.setenv("POLYGON_REQUESTS_PER_MINUTE", "77")
    assert load_settings().requests_per_minute == 77
    assert load_settings({}).requests_per_minute == 5
    # The first key variable wins, and a blank one counts as unset.
    env = {"POLYGON_API_KEY": "  ", "MASSIVE_API_KEY": "m"}
    assert load_settings(env).api_key_variable == "MASSIVE_API_KEY"
