"""`candles_parquet`: the Parquet export (`marketdata export --format parquet`) as an asset.

Not partitioned and in no job or schedule: materialise it from the UI (or a schedule of your
own) with the directory in its run config; each materialisation rewrites only the years that
changed since the last export into that directory (`marketdata_pipeline/export.py`).
"""
# No `from __future__ import annotations`: Dagster reads the real annotation objects.

from pathlib import Path

import dagster as dg
from pydantic import Field

from marketdata_pipeline.export import export_parquet
from marketdata_pipeline.lib.asset_names import CANDLE_ASSET_NAMES
from marketdata_pipeline.lib.errors import InputError
from marketdata_pipeline.lib.postgres.database import PostgresDatabase, ensure_schema


class ParquetExportConfig(dg.Config):
    """Where the export goes."""

    out: str = Field(
        description="Directory of the export (new, empty, or a previous export's): "
        "<out>/<table>/year=YYYY/data.parquet."
    )


@dg.asset(
    group_name="exports",
    kinds={"parquet"},
    deps=[dg.AssetKey(name) for name in CANDLE_ASSET_NAMES],
)
def candles_parquet(
    context: dg.AssetExecutionContext, config: ParquetExportConfig, database: PostgresDatabase
) -> dg.MaterializeResult:
    """The candle tables as Hive-partitioned Parquet (`year=YYYY/`), for DuckDB, polars and
    Spark; only the years whose rows changed since the last export are rewritten."""
    url = database.resolved_url()
    ensure_schema(url)
    try:
        results = export_parquet(url, Path(config.out), progress=context.log.info)
    except InputError as exc:
        raise dg.Failure(f"run config: {exc}") from None
    return dg.MaterializeResult(
        metadata={
            "out": dg.MetadataValue.path(str(Path(config.out).resolve())),
            **{
                f"{done.table}_years_written": dg.MetadataValue.json(done.written)
                for done in results
            },
            "rows_written": sum(done.rows_written for done in results),
            "years_unchanged": sum(len(done.unchanged) for done in results),
        }
    )
