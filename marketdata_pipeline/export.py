"""The store as Hive-partitioned Parquet: `<out>/<table>/year=YYYY/data.parquet`.

The way out for analysis that outgrows one Postgres: DuckDB, polars, Spark and Trino read the
layout as it is (`year` comes from the directory name; the files hold the table's columns).

An export rewrites only the years that changed since the last one into the same directory. Each
year's fingerprint (rows, newest `fetched_at`, and a sum of per-row hashes of symbol, day and
`fetched_at`, all computed by Postgres) is kept in `<out>/_marketdata_export.json`; a slice the
pipeline replaced has new `fetched_at` values, so its year's fingerprint moves. A year's file is
written beside its directory and renamed into place, so a reader (or a killed export) never sees
half a file; the fingerprint is recorded after the rename, so an interrupted export redoes at
most the year it was writing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from psycopg import sql

from marketdata_pipeline.lib.candles.schema import CANDLE_ASSET_NAMES, CANDLE_COLUMNS, CANDLE_SCHEMA
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.arrow import query_frame

MANIFEST = "_marketdata_export.json"
FILE_NAME = "data.parquet"
#: Bumped when the layout or the fingerprint changes: every year is then rewritten once.
FORMAT_VERSION = 1

_FINGERPRINTS = """
SELECT extract(year FROM day)::int AS year,
       count(*) AS rows,
       max(fetched_at)::text AS newest,
       sum(hashtextextended(symbol || ':' || day::text || ':'
                            || extract(epoch FROM fetched_at)::text, 0)::numeric)::text AS digest
FROM {table}
GROUP BY 1
ORDER BY 1
"""


@dataclass
class TableExport:
    """What one export did to one table's directory."""

    table: str
    written: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    rows_written: int = 0


def _check_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        # Years are removed from a directory the export owns; never from someone else's.
        raise InputError(
            f"--out {out} is a directory with other files in it (no {MANIFEST}): "
            "give an empty or new directory, or one a previous export wrote"
        )
    return out


def _load_manifest(out: Path) -> dict:
    path = out / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # unreadable: rewrite everything, which is always correct
    return manifest if manifest.get("format") == FORMAT_VERSION else {}


def _save_manifest(out: Path, manifest: dict) -> None:
    staged = out / f".{MANIFEST}.tmp"
    staged.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(staged, out / MANIFEST)


def _year_frame(url: str, table: str, year: int) -> pl.DataFrame:
    statement = sql.SQL(
        "SELECT {columns} FROM {table} WHERE day >= {first} AND day < {end} ORDER BY symbol, day"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in CANDLE_COLUMNS),
        table=sql.Identifier("marketdata", table),
        first=sql.Literal(dt.date(year, 1, 1)),
        end=sql.Literal(dt.date(year + 1, 1, 1)),
    )
    return query_frame(url, statement, schema=CANDLE_SCHEMA)


def export_parquet(
    url: str,
    out: Path,
    *,
    tables: Sequence[str] = CANDLE_ASSET_NAMES,
    progress: Callable[[str], None] | None = None,
) -> list[TableExport]:
    """Export `tables` of the store at `url` under `out`, rewriting only the changed years."""
    for table in tables:
        if table not in CANDLE_ASSET_NAMES:
            raise InputError(f"{table!r} is not a candle table ({', '.join(CANDLE_ASSET_NAMES)})")
    out = _check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out)
    manifest["format"] = FORMAT_VERSION
    recorded: dict[str, dict[str, list]] = manifest.setdefault("tables", {})
    results = []
    for table in tables:
        done = TableExport(table)
        results.append(done)
        fingerprints = {
            str(year): [rows, newest, digest]
            for year, rows, newest, digest in query_frame(
                url, sql.SQL(_FINGERPRINTS).format(table=sql.Identifier("marketdata", table))
            ).iter_rows()
        }
        before = recorded.setdefault(table, {})
        directory = out / table
        for year, fingerprint in fingerprints.items():
            target = directory / f"year={year}" / FILE_NAME
            if before.get(year) == fingerprint and target.is_file():
                done.unchanged.append(int(year))
                continue
            frame = _year_frame(url, table, int(year))
            target.parent.mkdir(parents=True, exist_ok=True)
            staged = directory / f".year={year}.parquet.tmp"
            frame.write_parquet(staged, compression="zstd", statistics=True)
            os.replace(staged, target)
            before[year] = fingerprint
            _save_manifest(out, manifest)
            done.written.append(int(year))
            done.rows_written += frame.height
            if progress is not None:
                progress(f"{table} year={year}: {frame.height} rows")
        for year in sorted(set(before) - set(fingerprints)):
            shutil.rmtree(directory / f"year={year}", ignore_errors=True)
            del before[year]
            done.removed.append(int(year))
        _save_manifest(out, manifest)
    return results
