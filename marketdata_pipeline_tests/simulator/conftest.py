"""One real simulator server for the simulator tests, reset before each test."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from polygon_simulator import SimulatorServer
from polygon_simulator.corporate_actions import NO_CORPORATE_ACTIONS

# A fixed "today" keeps the tests independent of the real date.
SIM_TODAY = dt.date(2025, 6, 2)


@pytest.fixture(scope="package")
def sim_server() -> Iterator[SimulatorServer]:
    """The running server, shared by the package's tests."""
    with SimulatorServer(today=SIM_TODAY, **NO_CORPORATE_ACTIONS) as server:
        yield server


@pytest.fixture
def sim(sim_server: SimulatorServer) -> SimulatorServer:
    """The server with default config, no faults and zeroed counters."""
    sim_server.reset(reset_config=True, today=SIM_TODAY, **NO_CORPORATE_ACTIONS)
    return sim_server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    """An httpx client authenticated the way our pipeline does it (Bearer header)."""
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    with httpx.Client(base_url=sim.base_url, headers=headers, timeout=10) as c:
        yield c
