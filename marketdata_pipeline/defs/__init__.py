"""Dagster definitions, one folder per domain (candles, symbols)."""
