"""Dagster definitions, one folder per domain (candles, symbols), assembled by `build_defs`."""
