"""Fixtures of the `lib` tests."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from marketdata_pipeline.lib.postgres.embedded import sqlalchemy_url

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pooled_instance(pg_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Dagster instance from the repository's dagster.yaml on a fresh database."""
    name = f"dagster_{uuid.uuid4().hex[:10]}"
    admin = pg_server.get_uri("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    shutil.copyfile(REPO / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("MARKETDATA_DAGSTER_STORAGE_URL", sqlalchemy_url(pg_server.get_uri(name)))
    instance = dg.DagsterInstance.from_config(str(tmp_path))
    yield instance
    instance.dispose()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
