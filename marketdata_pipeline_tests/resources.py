"""Resources the tests build on the simulator (importable; fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from marketdata_pipeline.lib.candles.window import CandleWindow
from marketdata_pipeline.lib.polygon.engine import FetchResult
from marketdata_pipeline.lib.polygon.planner import Strategy
from marketdata_pipeline.lib.polygon.resource import PolygonResource
from marketdata_pipeline.lib.symbols import AssetClass, Symbol
from polygon_simulator.server import SimulatorServer

#: A distinctive key: tests grep logs, events and errors for it.
TEST_API_KEY = "sk-test-9f3c2d1e-NEVER-LOG-ME"


def make_polygon(sim: SimulatorServer, **overrides) -> PolygonResource:
    """A PolygonResource on the simulator with fast retries (tests must not sleep long)."""
    config = dict(
        api_key=sim.api_key,
        base_url=sim.base_url,
        requests_per_minute=60_000,
        backoff_initial_seconds=0.01,
        backoff_max_seconds=0.1,
        max_attempts=4,
        timeout_seconds=5.0,
    )
    config.update(overrides)
    return PolygonResource(**config)


def fetch_candles(
    polygon: PolygonResource,
    asset_class: AssetClass,
    symbols: list[Symbol],
    window: CandleWindow,
    *,
    log: Any = None,
    force_strategy: Strategy | None = None,
) -> FetchResult:
    """Normalised daily bars for `symbols` over `window` in one chunk (`fetch_chunks` without
    chunking): the cheapest plan, failed symbols in `errors`. For tests and benchmarks; the
    assets stream chunks."""
    (result,) = polygon.fetch_chunks(
        asset_class, symbols, window, log=log, force_strategy=force_strategy, chunk_rows=None
    )
    return result
