"""The deployment of docs/deployment.md as real, separate processes, shared by the e2e tests.

One package fixture, `deployment`, starts what the guide starts, each in its own process group:
a Dagster code server for the package, `dagster-webserver` and `dagster-daemon`, all on Postgres
instance storage from the repository's `dagster.yaml` (an `e2e_dagster` database on the session
Postgres) and a fresh candle database, with the project's simulator in this process as the API.
Each process logs to a file in a temporary directory; a failing test gets the tails of those
logs in its report. Teardown stops every process group (SIGTERM, then SIGKILL), whatever the
tests did; the processes also get SIGTERM if this test process dies first.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from psycopg import sql

from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url
from marketdata_pipeline_tests.resources import TEST_API_KEY
from polygon_simulator.corporate_actions import NO_CORPORATE_ACTIONS
from polygon_simulator.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# The process commands of docs/deployment.md, run from $DAGSTER_HOME. The guide shows them with
# the default ports; test_guides.py checks that it does, word for word.
CODE_SERVER_COMMAND = (
    "dagster code-server start -m marketdata_pipeline.definitions --location-name marketdata"
    " -h 127.0.0.1 -p {grpc_port}"
)
WEBSERVER_COMMAND = "dagster-webserver -w workspace.yaml -h 127.0.0.1 -p {web_port}"
DAEMON_COMMAND = "dagster-daemon run -w workspace.yaml"
HEALTH_CHECK_COMMAND = "dagster api grpc-health-check -h 127.0.0.1 -p {grpc_port}"
WORKSPACE_YAML = """\
load_from:
  - grpc_server:
      host: 127.0.0.1
      port: {grpc_port}
      location_name: marketdata
"""
DEFAULT_PORTS = {"grpc_port": 4000, "web_port": 3000}

#: History the sensor backfills for a new symbol (MARKETDATA_START_DATE = today - this).
HISTORY_DAYS = 120
#: Symbols tracked before the processes start (the GraphQL backfill reads them).
SEEDED_STOCKS = ("AAPL", "MSFT")
STARTUP_TIMEOUT = 120.0
STOP_TIMEOUT = 5.0
LOG_TAIL_CHARS = 6000

T = TypeVar("T")

#: Files the tests saved for people to look at (screenshots), listed at the end of the run.
SAVED_ARTIFACTS: list[Path] = []


def without_project_variables() -> dict[str, str]:
    """This process's environment without the project's own variables (API, store, Dagster):
    what a user's fresh shell has, for the processes an e2e test starts."""
    prefixes = ("POLYGON_", "MASSIVE_", "MARKETDATA_", "DAGSTER_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Loaded here, not in the forked child: dlopen there could deadlock on another thread's lock.
_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies (Linux), so nothing is orphaned."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to a process group; False when none of its processes is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def _stop_groups(pgids: list[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process groups in order, then SIGKILL whatever is left after `timeout`.

    The webserver (uvicorn) and the code server shut down gracefully, waiting for open
    connections and RPCs; a test has nothing to lose from cutting that short.
    """
    alive = [pgid for pgid in pgids if _signal_group(pgid, signal.SIGTERM)]
    deadline = time.monotonic() + timeout
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [pgid for pgid in alive if _signal_group(pgid, 0)]
    for pgid in alive:
        _signal_group(pgid, signal.SIGKILL)


@dataclass
class ManagedProcess:
    """One long-running process of the deployment, in its own process group."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of its log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]


@dataclass
class Deployment:
    """The running deployment: its environment, URLs, databases and processes."""

    home: Path
    env: dict[str, str]
    web_url: str
    database_url: str
    sim: SimulatorServer
    start_date: dt.date
    logs_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)
    #: What a probe last saw going wrong, for the timeout message.
    last_problem: str | None = None

    def start(self, name: str, command: str, **ports: int) -> ManagedProcess:
        """Start one of the guide's commands from $DAGSTER_HOME, logging to a file."""
        argv = command.format(**ports).split()
        argv[0] = str(BIN / argv[0])  # the venv's script, as with the venv activated
        log_path = self.logs_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                argv,
                cwd=self.home,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        process = ManagedProcess(name, popen, log_path)
        self.processes.append(process)
        return process

    def assert_alive(self) -> None:
        """Fail at once (with its log) when a process of the deployment has exited."""
        for process in self.processes:
            code = process.popen.poll()
            if code is not None:
                raise AssertionError(
                    f"{process.name} exited with code {code}:\n{process.tail(3000)}"
                )

    def wait_for(
        self,
        what: str,
        probe: Callable[[], T | None],
        timeout: float,
        interval: float = 1.0,
    ) -> T:
        """Poll `probe` until it returns something truthy; fail naming `what` otherwise."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while True:
            self.assert_alive()
            try:
                value = probe()
                if value:
                    return value
            except (httpx.HTTPError, psycopg.OperationalError) as exc:
                last_error = exc
            if time.monotonic() > deadline:
                problem = last_error or self.last_problem
                detail = f" (last error: {problem})" if problem else ""
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
            time.sleep(interval)

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST a GraphQL query to the webserver (as the UI does); return `data`."""
        response = httpx.post(
            f"{self.web_url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=30,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors: {body['errors']}")
        return body["data"]

    def run(self, command: str, timeout: float = 60, **ports: int) -> subprocess.CompletedProcess:
        """Run one of the guide's one-shot commands to completion, from $DAGSTER_HOME."""
        argv = command.format(**ports).split()
        argv[0] = str(BIN / argv[0])
        return subprocess.run(
            argv, cwd=self.home, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def marketdata(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run the `marketdata` console script with the deployment's environment."""
        return subprocess.run(
            [str(BIN / "marketdata"), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Rows of a SQL query on the candle database."""
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(statement, params).fetchall()

    def log_report(self) -> str:
        """The tail of every process log, for failure reports."""
        parts = [f"process logs in {self.logs_dir}"]
        for process in self.processes:
            parts.append(f"----- {process.name} (exit {process.popen.poll()}) -----")
            parts.append(process.tail())
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process group: the daemon first (no new runs), then the webserver, then
        the code server with any run it started."""
        _stop_groups([p.popen.pid for p in reversed(self.processes)])
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=5)


def fresh_database(pg_server, name: str) -> str:
    """(Re)create an empty database `name` on the session Postgres; return its psycopg URL."""
    with psycopg.connect(pg_server.get_uri("postgres"), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return pg_server.get_uri(name)


def _location_loaded(deployment: Deployment) -> bool:
    data = deployment.graphql(
        """{ workspaceOrError { __typename ... on Workspace { locationEntries {
             name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
        } } } }"""
    )
    entries = data["workspaceOrError"].get("locationEntries") or []
    for entry in entries:
        error = entry["locationOrLoadError"]
        if error and error["__typename"] == "PythonError":
            # Reported if it lasts until the timeout; the webserver reconnects on its own.
            deployment.last_problem = f"code location {entry['name']}: {error['message']}"
    return any(
        e["name"] == "marketdata"
        and e["loadStatus"] == "LOADED"
        and (e["locationOrLoadError"] or {}).get("__typename") == "RepositoryLocation"
        for e in entries
    )


def _daemon_healthy(deployment: Deployment) -> bool:
    data = deployment.graphql(
        """{ instance { daemonHealth {
             sensor: daemonStatus(daemonType: "SENSOR") { healthy }
             backfill: daemonStatus(daemonType: "BACKFILL") { healthy }
             queue: daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { healthy }
        } } }"""
    )
    health = data["instance"]["daemonHealth"]
    return all(health[k]["healthy"] for k in ("sensor", "backfill", "queue"))


@pytest.fixture(scope="package")
def deployment(pg_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Code server, webserver and daemon as separate processes on Postgres (see module doc).

    Package-scoped: the browser and deployment tests share one deployment, stopped as soon as
    the e2e tests are done rather than at the end of the whole suite.
    """
    began = time.monotonic()

    def progress(message: str) -> None:
        print(f"[e2e +{time.monotonic() - began:5.1f} s] {message}", file=sys.stderr, flush=True)

    base = tmp_path_factory.mktemp("deployment")
    home = base / "dagster_home"
    home.mkdir()
    logs_dir = base / "logs"
    logs_dir.mkdir()
    storage_url = sqlalchemy_url(fresh_database(pg_server, "e2e_dagster"))
    database_url = fresh_database(pg_server, "e2e_candles")
    ports = {"grpc_port": free_port(), "web_port": free_port()}

    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    (home / "workspace.yaml").write_text(WORKSPACE_YAML.format(**ports))
    start_date = dt.date.today() - dt.timedelta(days=HISTORY_DAYS)
    with SimulatorServer(api_key=TEST_API_KEY, **NO_CORPORATE_ACTIONS) as sim:
        env = without_project_variables()
        env.update(
            DAGSTER_HOME=str(home),
            MARKETDATA_DAGSTER_STORAGE_URL=storage_url,
            MARKETDATA_DATABASE_URL=database_url,
            MARKETDATA_HOME=str(base / "marketdata_home"),
            MARKETDATA_START_DATE=start_date.isoformat(),
            POLYGON_API_KEY=sim.api_key,
            POLYGON_BASE_URL=sim.base_url,
            POLYGON_REQUESTS_PER_MINUTE="6000",
            PYTHONWARNINGS="ignore",
        )
        deployment = Deployment(
            home=home,
            env=env,
            web_url=f"http://127.0.0.1:{ports['web_port']}",
            database_url=database_url,
            sim=sim,
            start_date=start_date,
            logs_dir=logs_dir,
        )
        try:
            # The candle database starts empty: the command line migrates it.
            seeded = deployment.marketdata("symbols", "add", *SEEDED_STOCKS)
            assert seeded.returncode == 0, seeded.stderr
            progress(f"tracked {', '.join(SEEDED_STOCKS)}; starting the code server")
            deployment.start("code-server", CODE_SERVER_COMMAND, **ports)
            deployment.wait_for(
                "the code server to answer",
                lambda: deployment.run(HEALTH_CHECK_COMMAND, **ports).returncode == 0,
                STARTUP_TIMEOUT,
            )
            progress("code server answers; starting the webserver and the daemon")
            deployment.start("webserver", WEBSERVER_COMMAND, **ports)
            deployment.start("daemon", DAEMON_COMMAND, **ports)
            deployment.wait_for(
                "the webserver to load the code location from the code server",
                lambda: _location_loaded(deployment),
                STARTUP_TIMEOUT,
            )
            deployment.wait_for(
                "the daemon's heartbeats", lambda: _daemon_healthy(deployment), STARTUP_TIMEOUT
            )
            progress(f"deployment up: {deployment.web_url}, logs in {logs_dir}")
            yield deployment
        except BaseException:
            print(deployment.log_report(), file=sys.stderr)
            raise
        finally:
            deployment.stop()
            progress(f"deployment stopped; process logs in {logs_dir}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the processes' log tails to the report of a failing test that used them."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "deployment" in getattr(item, "fixturenames", ()):
        deployment = item.funcargs.get("deployment") if hasattr(item, "funcargs") else None
        if isinstance(deployment, Deployment):
            report.sections.append(("deployment process logs", deployment.log_report()))


def pytest_terminal_summary(terminalreporter) -> None:
    """Say where the screenshots are."""
    if SAVED_ARTIFACTS:
        terminalreporter.write_sep("-", "e2e artifacts")
        for path in SAVED_ARTIFACTS:
            terminalreporter.write_line(str(path))


def live_processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, pgid, state) of every live (non-zombie) process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid, pgid = fields[0], int(fields[1]), int(fields[2])
        if state != "Z":
            found[int(entry.name)] = (ppid, pgid, state)
    return found


def descendants(root: int) -> set[int]:
    """Every live process below `root` (children, grandchildren, ...)."""
    processes = live_processes()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, (ppid, _, _) in processes.items() if ppid in frontier}
        frontier = children - found
        found |= children
    return found
