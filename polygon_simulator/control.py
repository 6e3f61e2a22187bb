"""The control routes under `/_sim/`: inspect and steer a running simulator.

No auth and never counted: `GET /_sim/health`, `GET /_sim/stats[?log=false]`,
`POST /_sim/reset`, `GET|POST|DELETE /_sim/faults`, `DELETE /_sim/faults/{id}`,
`GET|POST /_sim/config`. A rejected body answers 400 with `{"error": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from polygon_simulator.pages import dumps
from polygon_simulator.responses import JSON
from polygon_simulator.state import ConfigError, SimulatorState


class Control:
    """`/_sim/...` handlers: inspect and steer the state (no auth, never counted)."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state

    @staticmethod
    def _ok(payload: Any, status: int = 200) -> Response:
        return Response(dumps(payload), status, media_type=JSON)

    @staticmethod
    async def _body(request: Request) -> Any:
        raw = await request.body()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"body is not JSON: {exc}") from None

    async def _run(self, action: Callable[[], Any]) -> Response:
        try:
            return self._ok(action())
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)

    async def health(self, request: Request) -> Response:
        """`GET /_sim/health`: liveness, and a reminder that the data is simulated."""
        return self._ok({"status": "OK", "simulated": True})

    async def stats(self, request: Request) -> Response:
        """`GET /_sim/stats`: counters and the request log (`?log=false` leaves the log out)."""
        include_log = request.query_params.get("log", "true").lower() not in ("false", "0")
        return self._ok(self.state.stats(include_log=include_log))

    async def reset(self, request: Request) -> Response:
        """`POST /_sim/reset` with optional `{"reset_config": bool, "config": {...}}`."""
        try:
            body = await self._body(request) or {}
            if not isinstance(body, dict) or set(body) - {"reset_config", "config"}:
                raise ConfigError('body must be {"reset_config": bool, "config": {...}}')
            changes = body.get("config") or {}
            if not isinstance(changes, dict):
                raise ConfigError("config must be an object")
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)
        reset_config = bool(body.get("reset_config", False))
        return await self._run(
            lambda: {"config": self.state.reset(reset_config, **changes).model_dump(mode="json")}
        )

    async def list_faults(self, request: Request) -> Response:
        """`GET /_sim/faults`: active rules with `id`, `fired`, `remaining`."""
        return self._ok(self.state.faults())

    async def add_faults(self, request: Request) -> Response:
        """`POST /_sim/faults` with one rule object or a list; answers `{"ids": [...]}`."""

        def add() -> dict[str, Any]:
            if not isinstance(body, dict | list):
                raise ConfigError("body must be a fault rule object or a list of them")
            ids = self.state.add_fault(body if isinstance(body, list) else [body])
            return {"ids": ids}

        try:
            body = await self._body(request)
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)
        return await self._run(add)

    async def clear_faults(self, request: Request) -> Response:
        """`DELETE /_sim/faults`: remove every rule."""
        self.state.clear_faults()
        return self._ok({"ids": []})

    async def remove_fault(self, request: Request) -> Response:
        """`DELETE /_sim/faults/{id}`: remove one rule (404 when unknown)."""
        try:
            rule_id = int(request.path_params["rule_id"])
        except ValueError:
            return self._ok({"error": "fault id must be an integer"}, 400)
        if not self.state.remove_fault(rule_id):
            return self._ok({"error": f"no fault {rule_id}"}, 404)
        return self._ok({"removed": rule_id})

    async def get_config(self, request: Request) -> Response:
        """`GET /_sim/config`: the config in force."""
        return self._ok(self.state.config.model_dump(mode="json"))

    async def set_config(self, request: Request) -> Response:
        """`POST /_sim/config` with a partial config object; answers the new config."""
        try:
            body = await self._body(request) or {}
            if not isinstance(body, dict):
                raise ConfigError("body must be an object of config fields")
        except ConfigError as exc:
            return self._ok({"error": str(exc)}, 400)
        return await self._run(lambda: self.state.configure(**body).model_dump(mode="json"))
