"""`make dev`: the Dagster webserver and daemon (`dagster dev`), supervised as one server."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

#: How long `dagster dev` gets to stop its webserver, daemon and code server after Ctrl-C
#: (it waits up to 60 s for each of its children itself) before the rest is killed.
DEV_SHUTDOWN_SECONDS = 90


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when no process of the group is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _stop_group(pgid: int) -> None:
    """Make sure no process of the group survives: SIGINT, then SIGTERM, then SIGKILL.

    What is left once `dagster dev` is gone is mostly runs in flight. SIGINT first, as a Ctrl-C
    under plain `dagster dev` would: a run worker then records the run as failed ("execution was
    interrupted") instead of staying STARTED in the instance, holding a slot of the run queue.
    """
    for sig, grace in ((signal.SIGINT, 20.0), (signal.SIGTERM, 5.0)):
        if not _signal_group(pgid, sig):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if not _signal_group(pgid, 0):
                return
    _signal_group(pgid, signal.SIGKILL)


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


def run_dev(host: str, port: int, env: dict[str, str]) -> int:
    """Run the Dagster webserver and daemon (via `dagster dev`) with the environment `env`.

    `dagster dev` runs in its own session, so a Ctrl-C in the terminal reaches only this
    process, which then asks `dagster dev` (one SIGINT) to stop its webserver, daemon and code
    server in order. Whatever is still alive in its process group afterwards (runs in flight) is
    then interrupted, terminated, killed, in that order (`_stop_group`). The embedded Postgres
    stays up on purpose: every command reuses it.
    """
    import threading

    from marketdata_pipeline.runtime import WORKSPACE_FILE

    process: subprocess.Popen | None = None
    # SIGINT too: a shell starting us in the background may have set it to "ignore".
    previous = {
        sig: signal.signal(sig, signal.default_int_handler)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    }
    try:
        url = f"http://{host}:{port}"
        print(
            f"Dagster UI: {url}  (webserver + daemon; instance {env.get('DAGSTER_HOME')}, "
            "runs and events in Postgres). Ctrl-C stops everything.",
            flush=True,
        )
        command = [
            os.path.join(os.path.dirname(sys.executable), "dagster"),
            "dev",
            "-w",
            str(WORKSPACE_FILE),
            "-h",
            host,
            "-p",
            str(port),
        ]
        process = subprocess.Popen(command, start_new_session=True, env=env)
        threading.Thread(target=_wait_until_serving, args=(url, process), daemon=True).start()
        try:
            return process.wait()
        except KeyboardInterrupt:
            print("\nstopping Dagster (webserver, daemon, code server)...", flush=True)
            process.send_signal(signal.SIGINT)
            # A second Ctrl-C, or a shutdown that takes too long: the group is killed below.
            with contextlib.suppress(subprocess.TimeoutExpired, KeyboardInterrupt):
                process.wait(timeout=DEV_SHUTDOWN_SECONDS)
            return 130
    finally:
        if process is not None:
            try:
                _stop_group(process.pid)
            except KeyboardInterrupt:  # another Ctrl-C: no more grace
                _signal_group(process.pid, signal.SIGKILL)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
