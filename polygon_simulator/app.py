"""The Starlette app of the Polygon simulator: the API routes our pipeline uses, and `/_sim/`.

API routes (real paths and shapes; every response of the app, control routes and errors
included, has `X-Simulated: true` unless the config's `identify` is off, when the simulator
poses as the real API):

- `GET /v2/aggs/ticker/{ticker}/range/1/day/{from}/{to}` with `adjusted`, `sort`, `limit`, `cursor`
- `GET /v2/aggs/grouped/locale/us/market/stocks/{date}` with `adjusted`, `include_otc` (ignored)
- `GET /v2/aggs/grouped/locale/global/market/crypto/{date}` with `adjusted`
- `GET /stocks/v1/splits`, `/stocks/v1/dividends` and the deprecated `/v3/reference/splits`,
  `/v3/reference/dividends`: the configured corporate actions, with the real filters,
  `limit`/`sort` and `next_url` cursors (see corporate_actions.py)
- `GET /v3/reference/tickers`, `/v3/reference/tickers/{ticker}` and
  `/vX/reference/tickers/{id}/events`: the ticker reference of the universe and the configured
  listings (renames, reused tickers, delistings; see listings.py)

Each API request goes: optional latency -> auth -> rate limit -> first matching fault -> answer,
and is counted and logged whatever the outcome.

Like the real API: `to` before `from` answers 400; dates outside the plan's window (before
`history_start`, or after today) answer 403 NOT_AUTHORIZED; a ticker outside the simulator's
universe (case-sensitive: `KIMpL` is known, `KIMPL` is not) answers an empty 200; bodies are
gzipped when the client accepts gzip.

Control routes (no auth, not counted): `GET /_sim/health`, `GET /_sim/stats[?log=false]`,
`POST /_sim/reset`, `GET|POST|DELETE /_sim/faults`, `DELETE /_sim/faults/{id}`,
`GET|POST /_sim/config`.

The pieces: request_flow.py (the path above), routes_aggregates.py and routes_reference.py (the
bodies), control.py (`/_sim/`), responses.py and parsing.py (answers, errors, parameters),
middleware.py (gzip, `X-Simulated`); this module wires them into one app.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from polygon_simulator import market
from polygon_simulator.control import Control
from polygon_simulator.event_endpoints import ENDPOINTS
from polygon_simulator.middleware import Identify, SwitchableGZip
from polygon_simulator.request_flow import RequestFlow
from polygon_simulator.responses import install_reset_log_filter
from polygon_simulator.routes_aggregates import AggregateRoutes
from polygon_simulator.routes_reference import ReferenceRoutes
from polygon_simulator.state import SimulatorState


def create_app(state: SimulatorState | None = None) -> Starlette:
    """The simulator app over `state` (a fresh default state when None).

    Builds the NYSE calendar tables up front so the first request is as fast as the others.
    """
    state = state if state is not None else SimulatorState()
    market.warm_up()
    install_reset_log_filter()
    flow = RequestFlow(state)
    aggregates = AggregateRoutes(flow)
    reference = ReferenceRoutes(flow)
    control = Control(state)
    routes = [
        Route(
            "/v2/aggs/ticker/{ticker}/range/{multiplier}/{timespan}/{from_}/{to}",
            aggregates.range_aggs,
        ),
        Route("/v2/aggs/grouped/locale/us/market/stocks/{date}", aggregates.grouped_stocks),
        Route("/v2/aggs/grouped/locale/global/market/crypto/{date}", aggregates.grouped_crypto),
        *(Route(path, reference.reference_events) for path in ENDPOINTS),
        Route("/v3/reference/tickers", reference.tickers),
        Route("/v3/reference/tickers/{ticker}", reference.ticker_overview),
        Route("/vX/reference/tickers/{id}/events", reference.ticker_events),
        Route("/_sim/health", control.health),
        Route("/_sim/stats", control.stats),
        Route("/_sim/reset", control.reset, methods=["POST"]),
        Route("/_sim/faults", control.list_faults, methods=["GET"]),
        Route("/_sim/faults", control.add_faults, methods=["POST"]),
        Route("/_sim/faults", control.clear_faults, methods=["DELETE"]),
        Route("/_sim/faults/{rule_id}", control.remove_fault, methods=["DELETE"]),
        Route("/_sim/config", control.get_config, methods=["GET"]),
        Route("/_sim/config", control.set_config, methods=["POST"]),
        Route("/{path:path}", flow.not_found),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Identify, state=state), Middleware(SwitchableGZip, state=state)],
    )
    app.state.simulator = state
    return app
