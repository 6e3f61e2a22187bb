"""The spool's directory: a setting wired to the run, and orphans of killed runs swept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from marketdata_pipeline.defs.resources import build_resources
from marketdata_pipeline.lib.candles import spool as spool_module
from marketdata_pipeline.lib.candles.spool import CandleSpool, sweep_orphans
from marketdata_pipeline.lib.settings import load_settings


def test_the_spool_directory_is_a_setting_with_a_default_under_the_home(tmp_path: Path):
    home = tmp_path / "home"
    default = load_settings({"MARKETDATA_HOME": str(home)})
    assert default.spool_dir == home.resolve() / "spool"
    chosen = load_settings({"MARKETDATA_HOME": str(home), "MARKETDATA_SPOOL_DIR": "/data/sp"})
    assert chosen.spool_dir == Path("/data/sp")
    assert build_resources(chosen)["polygon"].spool_dir == "/data/sp"


def test_a_spool_lives_in_its_own_directory_under_the_parent_and_leaves_nothing(tmp_path):
    parent = tmp_path / "spool"  # created on first use
    with CandleSpool(parent) as spool:
        spool.add(pl.DataFrame({"symbol": ["A"], "day": [None]}, schema_overrides={"day": pl.Date}))
        assert spool.directory.parent == parent and list(spool.directory.iterdir())
    assert parent.is_dir() and not list(parent.iterdir())


def test_orphans_of_dead_processes_on_this_host_are_swept(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    orphan = tmp_path / f"{spool_module._prefix(int(dead.stdout))}x1"
    live = tmp_path / f"{spool_module._prefix(os.getpid())}x2"
    elsewhere = tmp_path / f"marketdata-spool-another-host-{int(dead.stdout)}-x3"
    for path in (orphan, live, elsewhere):
        path.mkdir()
        (path / "chunk-000000.parquet").write_bytes(b"x")
    assert sweep_orphans(tmp_path) == [orphan]
    assert live.is_dir() and elsewhere.is_dir() and not orphan.exists()
