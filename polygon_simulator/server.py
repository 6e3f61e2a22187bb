"""Running the simulator: in a background thread for tests, or in the foreground for the CLI.

`SimulatorServer` binds the socket itself (port 0 = a free port chosen by the OS) before
uvicorn starts, so there is no race between picking a port and listening on it, and the base
URL is known at once.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from typing import Any

import httpx
import uvicorn

from polygon_simulator.app import create_app
from polygon_simulator.faults import FaultRule
from polygon_simulator.state import (
    SIMULATOR_API_KEY,
    SimulatorConfig,
    SimulatorState,
)

__all__ = ["SIMULATOR_API_KEY", "SimulatorServer", "banner", "serve"]

# The benchmarks open hundreds of connections at once; the default listen backlog would drop
# some of them on a busy machine.
_BACKLOG = 2048


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _uvicorn_config(app: Any, *, access_log: bool, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        access_log=access_log,
        log_level=log_level,
        lifespan="off",
        backlog=_BACKLOG,
        timeout_graceful_shutdown=5,
        # Keep idle pooled client connections open across a test's pauses.
        timeout_keep_alive=30,
    )


class SimulatorServer:
    """The simulator on 127.0.0.1 in a background thread, as a context manager.

    Usage::

        with SimulatorServer(requests_per_minute=5) as sim:
            headers = {"Authorization": f"Bearer {sim.api_key}"}
            httpx.get(f"{sim.base_url}/v2/aggs/grouped/locale/us/market/stocks/2024-07-03",
                      headers=headers)
            assert sim.stats()["requests"] == 1

    Extra keyword arguments are SimulatorConfig fields. `state` may be passed to share one
    state; then `api_key`/config arguments must not be.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = SIMULATOR_API_KEY,
        state: SimulatorState | None = None,
        access_log: bool = False,
        log_level: str = "warning",
        **config: Any,
    ) -> None:
        """Prepare (not start) a server; `port=0` picks a free port at `start()`."""
        if state is not None and (config or api_key != SIMULATOR_API_KEY):
            raise ValueError("pass either state or api_key/config, not both")
        self.state = state if state is not None else SimulatorState(api_key=api_key, **config)
        self.host = host
        self._requested_port = port
        self._access_log = access_log
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port: int | None = None

    @property
    def api_key(self) -> str:
        """The key clients must send (`Authorization: Bearer <key>`)."""
        return self.state.config.api_key

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash (only valid once started)."""
        if self.port is None:
            raise RuntimeError("the simulator is not running")
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> SimulatorServer:
        """Start uvicorn in a daemon thread and wait until it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        app = create_app(self.state)
        self._socket = _bind(self.host, self._requested_port)
        self.port = self._socket.getsockname()[1]
        config = _uvicorn_config(app, access_log=self._access_log, log_level=self._log_level)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._run,
            kwargs={"sockets": [self._socket]},
            name=f"polygon-simulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self._cleanup()
                raise RuntimeError("the simulator thread died during start-up (see the log)")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the simulator did not start within {timeout} s")
            time.sleep(0.01)
        # `started` is set once the listener exists; one real request proves the app answers.
        httpx.get(f"{self.base_url}/_sim/health", timeout=timeout).raise_for_status()
        return self

    def _run(self, **kwargs: Any) -> None:
        # Ctrl-C is for the main thread (the command running in front of this server): with the
        # signal blocked here, the kernel never hands it to this thread's event loop.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        assert self._server is not None
        self._server.run(**kwargs)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut uvicorn down and join its thread (idempotent)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        self._cleanup()

    def _cleanup(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = None
        self._server = None
        self._thread = None
        self.port = None

    def __enter__(self) -> SimulatorServer:
        """Start the server (if not started) and return it."""
        return self if self._thread is not None else self.start()

    def __exit__(self, *exc_info: object) -> None:
        """Stop the server."""
        self.stop()

    # In-process helpers: the same operations as the /_sim control API, without HTTP.

    def stats(self, include_log: bool = True) -> dict[str, Any]:
        """Request counters and log (see SimulatorState.stats)."""
        return self.state.stats(include_log=include_log)

    def reset(self, reset_config: bool = False, **config: Any) -> SimulatorConfig:
        """Clear counters, log, faults and the rate-limit window (see SimulatorState.reset)."""
        return self.state.reset(reset_config, **config)

    def add_fault(
        self,
        rule: FaultRule | dict[str, Any] | list[FaultRule | dict[str, Any]] | None = None,
        /,
        **fields: Any,
    ) -> int | list[int]:
        """Add a fault rule (object, dict, list, or keyword fields); returns the id(s)."""
        return self.state.add_fault(rule, **fields)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self.state.clear_faults()

    def configure(self, **changes: Any) -> SimulatorConfig:
        """Change config fields live (see state.UPDATABLE_FIELDS)."""
        return self.state.configure(**changes)


def banner(base_url: str, api_key: str) -> str:
    """The start-up notice of `marketdata simulator`: loud, because the data is not real."""
    rule = "=" * 78
    lines = [
        rule,
        "  POLYGON API SIMULATOR -- ALL DATA IS SIMULATED. THESE ARE NOT MARKET PRICES.",
        "  Deterministic synthetic candles for tests and demos; never trade or report on them.",
        "",
        f"  Base URL : {base_url}",
        f"  API key  : {api_key}",
        f"  Auth     : Authorization: Bearer {api_key}",
        "  Endpoints: /v2/aggs/ticker/{ticker}/range/1/day/{from}/{to}",
        "             /v2/aggs/grouped/locale/us/market/stocks/{date}",
        "             /v2/aggs/grouped/locale/global/market/crypto/{date}",
        "             /stocks/v1/splits, /stocks/v1/dividends (and /v3/reference/...)",
        "  Control  : GET /_sim/stats, POST /_sim/reset, POST|DELETE /_sim/faults,",
        "             POST /_sim/config",
        rule,
    ]
    return "\n".join(lines)


def serve(
    host: str,
    port: int,
    api_key: str,
    *,
    access_log: bool = False,
    log_level: str = "info",
    **config: Any,
) -> None:
    """Run the simulator in the foreground until interrupted (`marketdata simulator`).

    Prints a banner saying the data is simulated, with the base URL and the key. `config` are
    SimulatorConfig fields (e.g. requests_per_minute=5).
    """
    state = SimulatorState(api_key=api_key, **config)
    app = create_app(state)
    sock = _bind(host, port)
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    print(banner(f"http://{shown_host}:{sock.getsockname()[1]}", api_key), flush=True)
    server = uvicorn.Server(_uvicorn_config(app, access_log=access_log, log_level=log_level))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        sys.stdout.flush()
