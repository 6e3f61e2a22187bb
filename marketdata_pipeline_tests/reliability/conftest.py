"""Helpers shared by the reliability suite (faults, bad input, secrets).

Everything here drives real parts: the session Postgres from the top-level conftest, the
simulator over HTTP, Dagster in process, and the `marketdata` console script in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from marketdata_pipeline.lib.postgres.tracked_symbols import add_symbols
from marketdata_pipeline.lib.symbols import parse_symbols
from marketdata_pipeline_tests.helpers import mark_identified

REPO = Path(__file__).resolve().parents[2]
MARKETDATA = REPO / ".venv" / "bin" / "marketdata"
if not MARKETDATA.exists():  # a venv elsewhere: the script sits next to the interpreter
    MARKETDATA = Path(sys.executable).with_name("marketdata")

#: Variables a CLI subprocess must not inherit from the developer's shell or other tests.
_SCRUBBED = (
    "POLYGON_API_KEY",
    "MASSIVE_API_KEY",
    "POLYGON_BASE_URL",
    "POLYGON_REQUESTS_PER_MINUTE",
    "MARKETDATA_DATABASE_URL",
    "MARKETDATA_DAGSTER_STORAGE_URL",
    "MARKETDATA_START_DATE",
    "DAGSTER_HOME",
)


def track(
    database_url: str, symbols: list[str], asset_class: str = "stock", *, identified: bool = True
) -> None:
    """Add `symbols` to marketdata.tracked_symbols; stocks as already `identified` (their
    security asked about once before), so the faults meet the candle requests."""
    with psycopg.connect(database_url) as conn:
        add_symbols(conn, parse_symbols(symbols, asset_class))
    if identified and asset_class == "stock":
        mark_identified(database_url, symbols)


def symbol_status(database_url: str) -> dict[str, tuple[str, str | None]]:
    """symbol -> (status, last_error) from marketdata.tracked_symbols."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT symbol, status, last_error FROM marketdata.tracked_symbols"
        ).fetchall()
    return {s: (status, error) for s, status, error in rows}


@dataclass(frozen=True)
class CliResult:
    """What a `marketdata` subprocess did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def error_lines(self) -> list[str]:
        """Non-empty stderr lines."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def cli_env(home: Path, **env: str | None) -> dict[str, str]:
    """A clean environment for the console script: MARKETDATA_HOME in `home`, plus `env`."""
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    base.update(
        MARKETDATA_HOME=str(home),
        MARKETDATA_START_DATE="2020-01-01",
        DAGSTER_HOME=str(home / "dagster_home"),
    )
    for key, value in env.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start `marketdata ARGS...` without waiting."""
    return subprocess.Popen(
        [str(MARKETDATA), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=env["MARKETDATA_HOME"],
    )


def finish_cli(process: subprocess.Popen, timeout: float = 120) -> CliResult:
    """Wait for a process started by `start_cli` and collect its output."""
    stdout, stderr = process.communicate(timeout=timeout)
    return CliResult(tuple(process.args[1:]), process.returncode, stdout, stderr)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 120) -> CliResult:
    """Run `marketdata ARGS...` to completion."""
    return finish_cli(start_cli(args, env), timeout)
