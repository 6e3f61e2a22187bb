"""`marketdata export --format parquet`: every stored row comes back from the Parquet files as
polars (and DuckDB, when installed) read them, and a second export rewrites only what changed."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import polars as pl
import pytest

from marketdata_pipeline.export import MANIFEST
from marketdata_pipeline.lib.candles.schema import CANDLE_SCHEMA
from marketdata_pipeline_tests.helpers import (
    crypto_daily_candles,
    materialise,
    read_table,
    stock_daily_candles,
)

SYMBOLS = {"stock_daily_candles": ["AAPL", "MSFT"], "crypto_daily_candles": ["BTCUSD"]}
ACROSS_NEW_YEAR = (dt.date(2024, 12, 16), dt.date(2025, 1, 10))


def scan(out: Path, table: str) -> pl.DataFrame:
    """The export as a user reads it: hive partitioning gives the `year` column back."""
    return (
        pl.scan_parquet(out / table / "**" / "*.parquet", hive_partitioning=True)
        .sort("symbol", "day")
        .collect()
    )


def files(out: Path) -> dict[str, int]:
    """Each exported file with its modification time (ns): what a rewrite changes."""
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in out.rglob("*.parquet")}


@pytest.fixture
def stored(sim, resources, database_url) -> str:
    result = materialise(
        *ACROSS_NEW_YEAR,
        resources,
        assets=[stock_daily_candles, crypto_daily_candles],
        symbols=SYMBOLS,
    )
    assert result.success
    return database_url


def test_export_gives_back_every_row_and_then_rewrites_only_the_changed_year(
    stored, resources, cli, tmp_path
):
    out = tmp_path / "parquet"
    code, text, err = cli("export", "--format", "parquet", "--out", str(out))
    assert code == 0, err
    assert "stock_daily_candles: 2 years written" in text
    assert "crypto_daily_candles: 2 years written" in text
    for table in ("stock_daily_candles", "crypto_daily_candles"):
        exported = scan(out, table)
        expected = read_table(stored, table)
        assert exported.drop("year").equals(expected)
        assert exported.schema == pl.Schema({**CANDLE_SCHEMA, "year": pl.Int64()})
        assert (exported["year"] == exported["day"].dt.year()).all()
        assert sorted(p.name for p in (out / table).iterdir()) == ["year=2024", "year=2025"]
    first = files(out)

    # Nothing changed: nothing is rewritten.
    code, text, _ = cli("export", "--format", "parquet", "--out", str(out))
    assert code == 0
    assert "stock_daily_candles: 0 years written (0 rows), 2 unchanged" in text
    assert files(out) == first

    # The pipeline replaces a January slice of AAPL: only the stock 2025 file is rewritten.
    assert materialise(
        dt.date(2025, 1, 6), dt.date(2025, 1, 7), resources,
        assets=[stock_daily_candles], symbols={"stock_daily_candles": ["AAPL"]},
    ).success  # fmt: skip
    code, text, _ = cli("export", "--format", "parquet", "--out", str(out))
    assert code == 0
    assert "stock_daily_candles: 1 years written" in text
    assert "crypto_daily_candles: 0 years written" in text
    changed = {name for name, mtime in files(out).items() if first[name] != mtime}
    assert changed == {"stock_daily_candles/year=2025/data.parquet"}
    assert (
        scan(out, "stock_daily_candles")
        .drop("year")
        .equals(read_table(stored, "stock_daily_candles"))
    )
    assert (out / MANIFEST).is_file()
    assert not list(out.rglob("*.tmp"))


@pytest.mark.skipif(not importlib.util.find_spec("duckdb"), reason="duckdb is not installed")
def test_duckdb_reads_the_export_as_it_is(stored, cli, tmp_path):
    import duckdb

    out = tmp_path / "parquet"
    assert cli("export", "--format", "parquet", "--out", str(out))[0] == 0
    pattern = str(out / "stock_daily_candles" / "*" / "*.parquet")
    (count,) = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning = true)"
    ).fetchone()
    assert count == read_table(stored, "stock_daily_candles").height


def test_export_refuses_a_directory_it_did_not_write(database_url, cli, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = cli("export", "--format", "parquet", "--out", str(tmp_path))
    assert code == 2
    assert "is a directory with other files in it" in err
    assert (tmp_path / "notes.txt").read_text() == "mine"
    code, _, err = cli("export", "--format", "csv", "--out", str(tmp_path / "x"))
    assert code == 2
    assert "'csv' is not 'parquet'" in err


def test_the_export_asset_writes_the_same_files(stored, resources, tmp_path):
    """`candles_parquet` in a real Dagster run: the same layout and rows as the command."""
    import dagster as dg

    from marketdata_pipeline.definitions import defs

    out = tmp_path / "asset-export"
    result = dg.materialize(
        [defs.get_assets_def("candles_parquet")],
        resources={"database": resources["database"]},
        run_config={"ops": {"candles_parquet": {"config": {"out": str(out)}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["stock_daily_candles_years_written"].value == [2024, 2025]
    for table in ("stock_daily_candles", "crypto_daily_candles"):
        assert scan(out, table).drop("year").equals(read_table(stored, table))
