"""`marketdata dev`: the Dagster UI and daemon (`dagster dev`) supervised like a server.

- A taken port is refused before anything starts (`dagster dev` itself would print the URL, fail
  to bind, and keep a daemon launching runs with no UI).
- SIGINT (Ctrl-C), SIGTERM (what `timeout`, systemd and docker send) and SIGHUP stop it the same
  way: `dagster dev` gets one SIGINT and stops its webserver, daemon and code server in order;
  whatever of its process group is left afterwards (runs in flight) is killed.
- Runs this server launched and that were still in flight are then marked failed in the Dagster
  instance (`devserver_runs.settle_runs`), so none stays "Started" forever holding a slot of the
  run queue. A symbol-history run of the tracked-symbols sensor that ended that way is requested
  again on the next start by the code location's `history_recovery_sensor`
  (`defs/symbols/recovery.py`), which reads the failures recorded while its daemon was down: the
  recovery is Dagster's, in every deployment, not this server's.

`dagster dev` runs in its own session: a Ctrl-C in the terminal reaches only this process. If
every child got it at once, `dagster dev` 1.13 would restart the code server that exited first
and leave that copy running.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from marketdata_pipeline.devserver_runs import settle_runs
from marketdata_pipeline.lib.errors import ConfigError

#: The repository's workspace file: one code location, `marketdata_pipeline.definitions`.
WORKSPACE_FILE = Path(__file__).resolve().parent.parent / "workspace.yaml"
#: How long `dagster dev` gets to stop its webserver, daemon and code server (it waits up to
#: 60 s for each of its children itself) before the rest of its group is killed.
DEV_SHUTDOWN_SECONDS = 90
#: How long the killed leftovers of `dagster dev`'s group may take to disappear.
GROUP_KILL_SECONDS = 10.0
#: The signals that stop the server, all handled alike.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class PortInUseError(ConfigError):
    """The webserver's port is already taken by another process."""


class _Stop(Exception):
    """Raised by the signal handler in the main thread: a stop was asked for."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def ensure_port_free(host: str, port: int) -> None:
    """Raise `PortInUseError` when `host:port` cannot be bound (another server listens there).

    Binds with SO_REUSEADDR, as the webserver (uvicorn) does, so a port only held by connections
    in TIME_WAIT counts as free, exactly when the webserver could take it.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"host {host!r} for the Dagster UI does not resolve: {exc}") from exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise PortInUseError(
                f"port {port} on {host} is already in use ({exc.strerror}): another Dagster UI "
                f"or server is listening there. Stop it, or choose another port with "
                f"`marketdata dev --port N` (`make dev PORT=N`)"
            ) from exc


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when no process of the group is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _kill_leftovers(pgid: int) -> None:
    """Kill whatever of `dagster dev`'s process group outlived it: run workers, their step
    processes and Dagster's orphan watchers.

    SIGKILL, not an interrupt: an interrupted run worker logs its interruption with a stack trace
    (and the orphan watchers print a KeyboardInterrupt traceback) while adding nothing. The run is
    marked failed through the instance right after, and a write cut short is a transaction that
    Postgres rolls back, so the candle tables keep their previous rows.
    """
    if _signal_group(pgid, signal.SIGKILL):
        deadline = time.monotonic() + GROUP_KILL_SECONDS
        while _signal_group(pgid, 0) and time.monotonic() < deadline:
            time.sleep(0.1)


def _wait_until_serving(url: str, process: subprocess.Popen) -> None:
    """Print once the UI answers (Dagster takes a few seconds to load the code location)."""
    import httpx

    while process.poll() is None:
        try:
            if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                print(f"Dagster UI ready: {url}  (Ctrl-C stops everything)", flush=True)
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)


def dagster_dev_command(host: str, port: int, workspace: Path = WORKSPACE_FILE) -> list[str]:
    """The `dagster dev` command line: our workspace, INFO logs for the Dagster services."""
    return [
        str(Path(sys.executable).parent / "dagster"),
        "dev",
        "-w",
        str(workspace),
        "-h",
        host,
        "-p",
        str(port),
        # The services' own logs; run output is INFO through the code location's console logger.
        "--log-level",
        "info",
    ]


def run_dev(
    host: str,
    port: int,
    env: Mapping[str, str],
    *,
    workspace: Path = WORKSPACE_FILE,
) -> int:
    """Run `dagster dev` (webserver, daemon, code server) until it exits or a stop signal arrives.

    `env` is the complete environment of the Dagster processes (instance, database URLs, API
    settings); nothing here reads this process's own environment.

    Returns the exit code: `dagster dev`'s own when it exits by itself, 130 after SIGINT, 0 after
    SIGTERM or SIGHUP (a supervisor asked for the stop). Raises `PortInUseError` (exit code 3)
    before starting anything when the port is taken.
    """
    ensure_port_free(host, port)
    url = f"http://{host}:{port}"
    began = dt.datetime.now(dt.UTC)
    stopping_since: dt.datetime | None = None
    process: subprocess.Popen | None = None
    code = 0
    # SIGINT too: a shell starting us in the background may have set it to "ignore".
    previous = {sig: signal.signal(sig, _raise_stop) for sig in STOP_SIGNALS}
    try:
        print(
            f"Dagster UI: {url}  (webserver + daemon; instance {env.get('DAGSTER_HOME', '?')}). "
            "Ctrl-C stops everything.",
            flush=True,
        )
        process = subprocess.Popen(
            dagster_dev_command(host, port, workspace),
            env=dict(env),
            # Started in the instance's folder: from the repository, `dagster dev` would warn
            # that the repository's dagster.yaml "will not be used" (the instance is the copy
            # in DAGSTER_HOME). The workspace file is passed by absolute path.
            cwd=env.get("DAGSTER_HOME") or workspace.parent,
            start_new_session=True,
        )
        threading.Thread(target=_wait_until_serving, args=(url, process), daemon=True).start()
        try:
            code = process.wait()
        except _Stop as stop:
            stopping_since = dt.datetime.now(dt.UTC)
            print(f"\n{stop}: stopping Dagster (webserver, daemon, code server)...", flush=True)
            code = 130 if stop.signum == signal.SIGINT else 0
            process.send_signal(signal.SIGINT)
            # A second signal, or a shutdown that takes too long: the group is killed below.
            with contextlib.suppress(subprocess.TimeoutExpired, _Stop):
                process.wait(timeout=DEV_SHUTDOWN_SECONDS)
        with contextlib.suppress(_Stop):
            _kill_leftovers(process.pid)
        process.wait()
        with contextlib.suppress(_Stop):
            settle_runs(env, began, stopping_since or dt.datetime.now(dt.UTC))
        return code
    except _Stop:
        # A stop before `dagster dev` was even started: nothing to settle.
        if process is not None:
            _signal_group(process.pid, signal.SIGKILL)
        return 130
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
