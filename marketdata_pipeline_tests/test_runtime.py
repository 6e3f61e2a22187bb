"""The command line's process set-up: the keyless simulator, as each command starts it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.settings import load_settings
from marketdata_pipeline.lib.symbols import AssetClass, parse_symbols
from marketdata_pipeline.runtime import child_environment, simulator_if_no_key
from marketdata_pipeline_tests.resources import fetch_candles

WINDOW = CandleWindow(dt.date(2024, 1, 2), dt.date(2024, 1, 31))


def test_the_keyless_simulators_pages_serve_the_next_command_on_another_port(tmp_path: Path):
    settings = load_settings(
        {"MARKETDATA_HOME": str(tmp_path), "MARKETDATA_CACHE_DIR": str(tmp_path / "pages")}
    )
    symbols = parse_symbols(["AAPL", "MSFT", "IBM"], "stock")
    seen = []
    for _ in range(2):  # two commands: each starts its own simulator on a free port
        with simulator_if_no_key(settings) as command:
            # The rate budget's table is beside the point here: keep it in process.
            polygon = build_resources(command)["polygon"].model_copy(update={"database": None})
            result = fetch_candles(
                polygon, AssetClass.STOCK, symbols, WINDOW, force_strategy="range"
            )
            polygon.close()
            seen.append((command.base_url, command.cache_scope, result))
    (first_url, first_scope, first), (second_url, second_scope, second) = seen
    assert first_url != second_url
    assert first_scope == second_scope and first_scope.startswith("simulator:")
    assert first.requests["pages_reused"] == 0
    # What the first command fetched (and, killed, never committed) the next one reuses.
    assert second.requests["pages_reused"] == 3
    assert sorted(second.cache_keys) == sorted(first.cache_keys)
    # `make dev`'s processes name the simulator the same way.
    env = child_environment(command)
    assert load_settings(env).cache_scope == first_scope


def test_a_real_api_is_named_by_its_address_in_the_cache():
    settings = load_settings({"POLYGON_API_KEY": "k", "POLYGON_BASE_URL": "http://api.test"})
    assert settings.cache_scope is None
    # A simulator the user started and set as POLYGON_BASE_URL is any other API here.
    assert (
        settings.model_copy(update={"simulator_world": None, "simulated": True}).cache_scope is None
    )
