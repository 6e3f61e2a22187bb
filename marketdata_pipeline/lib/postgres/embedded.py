"""The embedded Postgres used when `MARKETDATA_DATABASE_URL` is unset.

pgserver ships Postgres binaries in a wheel, so a fresh clone needs nothing installed by hand,
and it works as root (it runs the server as an unprivileged `pgserver` user). The server listens
on a Unix socket inside its data directory, is left running when the process exits, and is reused
by the next command (`cleanup_mode=None`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import sql

from marketdata_pipeline.lib.errors import ConfigError

CANDLE_DATABASE = "marketdata"
DAGSTER_DATABASE = "dagster"


def _import_pgserver():
    """Import pgserver without its `XDG_RUNTIME_DIR is not set` warning.

    pgserver asks platformdirs for a per-user runtime directory (for its lock file) while its
    class body is evaluated, i.e. on import; platformdirs >= 4.4 then warns (RuntimeDirWarning)
    when the variable is unset, as in containers and ssh sessions without a login manager, and
    falls back to a private directory that works just as well. The warning only alarms users.
    """
    import warnings

    with warnings.catch_warnings():
        # By message: older platformdirs have no RuntimeDirWarning class (and do not warn).
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        try:
            import pgserver
        except ImportError:
            raise ConfigError(
                "no MARKETDATA_DATABASE_URL and no embedded Postgres: set the URL of your "
                "Postgres, or install the local parts (pip install 'marketdata_pipeline[local]')"
            ) from None
    return pgserver


def _server(data_dir: Path, *, keep_running: bool = True):
    pgserver = _import_pgserver()

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode=None if keep_running else "stop")


def socket_dir(url: str) -> str | None:
    """The socket directory of a pgserver URL (`...?host=/path`)."""
    marker = "host="
    return url.split(marker, 1)[1].split("&", 1)[0] if marker in url else None


_urls_by_dir: dict[Path, dict[str, str]] = {}


def ensure_embedded(data_dir: Path, *, keep_running: bool = True) -> dict[str, str]:
    """Start (or reuse) the embedded server and return its URLs (once per process and directory).

    Returns `candles` (psycopg URL of the candle store database) and `dagster` (a SQLAlchemy
    `postgresql+psycopg2://` URL for dagster-postgres: SQLAlchemy 2.1 would map a bare
    `postgresql://` to psycopg 3, which dagster-postgres does not support).
    """
    data_dir = data_dir.resolve()
    if data_dir in _urls_by_dir:
        # Every `PostgresDatabase.connect()` resolves the URL: without this, each would take
        # pgserver's lock and open an admin connection again.
        return _urls_by_dir[data_dir]
    server = _server(data_dir, keep_running=keep_running)
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        existing = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        for name in (CANDLE_DATABASE, DAGSTER_DATABASE):
            if name not in existing:
                # Another process may create it between our check and now.
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    host = socket_dir(admin_url) or str(data_dir)
    _urls_by_dir[data_dir] = {
        "candles": f"postgresql://postgres:@/{CANDLE_DATABASE}?host={quote(host)}",
        "dagster": f"postgresql+psycopg2://postgres:@/{DAGSTER_DATABASE}?host={quote(host)}",
    }
    return _urls_by_dir[data_dir]


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server of `data_dir` if it runs (`pg_ctl stop -m fast`: sessions are
    ended, committed data is kept); True when one was stopped."""
    data_dir = data_dir.resolve()
    if not (data_dir / "postmaster.pid").exists():
        return False
    pgserver = _import_pgserver()
    owner = data_dir.stat().st_uid
    # As root, pgserver runs the server as its own unprivileged user, and pg_ctl must be too.
    user = {"user": pwd.getpwuid(owner).pw_name} if os.geteuid() == 0 and owner != 0 else {}
    try:
        pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, **user)
    except subprocess.CalledProcessError:
        return False  # a pid file left behind by a crash: no server was running
    _urls_by_dir.pop(data_dir, None)
    return True


def sqlalchemy_url(url: str) -> str:
    """The dagster-postgres (SQLAlchemy, psycopg2) form of a `postgresql://` URL."""
    for prefix in ("postgresql+psycopg2://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    raise ValueError("not a postgresql:// URL")
