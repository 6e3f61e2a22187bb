"""Resources the tests build on the simulator (importable; fixtures live in conftest.py)."""

from __future__ import annotations

from marketdata_pipeline.lib.polygon.resource import PolygonResource
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
