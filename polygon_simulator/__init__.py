"""A Polygon.io / Massive REST API simulator: real HTTP, real response shapes, SIMULATED data.

It serves the endpoints the pipeline uses (range aggregates and grouped daily, stocks and
crypto; stock splits and dividends) with deterministic synthetic candles, NYSE holidays,
`next_url` pagination, key checking, a free-tier rate limit and switchable faults, and counts
every request for tests and benchmarks.

- `market`: the synthetic data (`bars`, `stock_universe`, `crypto_universe`), over `universe`,
  `hashing`, `series` and `timestamps`; `pages` and `body_cache`: the bodies and their cache.
- `corporate_actions`: configured splits and dividends, split-adjusted bars; `event_endpoints`
  and `reference_query`: their endpoints.
- `listings`: listed securities with ticker intervals (renames, reused tickers, delistings),
  `identity_world()`, and the ticker reference endpoints.
- `faults`: `FaultRule` and what each fault kind sends.
- `config`: `SimulatorConfig`; `state`: `SimulatorState` (config, faults, counters, log).
- `app`: `create_app(state)`, the Starlette app, wiring `request_flow` (what every API request
  goes through), `routes_aggregates`, `routes_reference`, `control` (`/_sim/`), `middleware`.
- `server`: `SimulatorServer` (background thread, for tests) and `serve` (the CLI command).
"""

from polygon_simulator.app import create_app
from polygon_simulator.faults import FaultRule
from polygon_simulator.listings import SimListing, SimTicker, identity_world
from polygon_simulator.market import bars, crypto_universe, stock_universe
from polygon_simulator.server import SimulatorServer, serve
from polygon_simulator.state import (
    SIMULATOR_API_KEY,
    ConfigError,
    SimulatorConfig,
    SimulatorState,
)

__all__ = [
    "SIMULATOR_API_KEY",
    "ConfigError",
    "FaultRule",
    "SimListing",
    "SimTicker",
    "SimulatorConfig",
    "SimulatorServer",
    "SimulatorState",
    "bars",
    "create_app",
    "crypto_universe",
    "identity_world",
    "serve",
    "stock_universe",
]
