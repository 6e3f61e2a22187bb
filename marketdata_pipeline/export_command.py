"""`marketdata export`: the store as Hive-partitioned Parquet (the work is in `export.py`)."""

from __future__ import annotations

import click

from marketdata_pipeline.lib.asset_names import CANDLE_ASSET_NAMES


@click.command("export")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["parquet"]),
    required=True,
    help="The file format (Parquet, Hive-partitioned by year).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=str),
    help="Directory to export into (new, empty, or a previous export's).",
)
@click.option("--asset", type=click.Choice(CANDLE_ASSET_NAMES), help="Only this table.")
def export(file_format: str, out: str, asset: str | None) -> None:
    """Write the candle tables as Parquet under OUT/<table>/year=YYYY/, rewriting only the
    years that changed since the last export into OUT.

    DuckDB, polars and Spark read the layout as it is, e.g. in polars
    `pl.scan_parquet("OUT/stock_daily_candles/**/*.parquet", hive_partitioning=True)`.

    \b
    Example:
      marketdata export --format parquet --out ./marketdata-parquet
    """
    from pathlib import Path

    from marketdata_pipeline.export import export_parquet
    from marketdata_pipeline.runtime import prepare

    runtime = prepare(with_dagster_home=False)
    results = export_parquet(
        runtime.database_url,
        Path(out),
        tables=[asset] if asset else CANDLE_ASSET_NAMES,
        progress=lambda line: click.echo(f"  wrote {line}"),
    )
    for done in results:
        click.echo(
            f"{done.table}: {len(done.written)} years written ({done.rows_written} rows), "
            f"{len(done.unchanged)} unchanged, {len(done.removed)} removed -> "
            f"{Path(out) / done.table}"
        )
