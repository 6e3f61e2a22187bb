"""The simulator's ASGI middlewares: switchable gzip, and the `X-Simulated` header."""

from __future__ import annotations

from typing import Any

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import Receive, Scope, Send

from polygon_simulator.state import SimulatorState


class SwitchableGZip:
    """Starlette's gzip middleware, applied only while the config's `gzip` switch is on."""

    def __init__(self, app: Any, state: SimulatorState) -> None:
        self.plain = app
        # Level 1: most of the size win at a fraction of the CPU of higher levels, so the simulator
        # stays fast enough for the throughput benchmarks.
        self.gzipped = GZipMiddleware(app, minimum_size=500, compresslevel=1)
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.gzipped if self.state.config.gzip else self.plain
        await app(scope, receive, send)


class Identify:
    """Adds `X-Simulated: true` to every response while the config's `identify` is on.

    One place for every answer (API, errors, faults, control routes), so a client can always
    tell the simulator from the vendor; with `identify` off nothing betrays it.
    """

    def __init__(self, app: Any, state: SimulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.state.config.identify:
            await self.app(scope, receive, send)
            return

        async def send_identified(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-simulated", b"true")],
                }
            await send(message)

        await self.app(scope, receive, send_identified)
