"""Candle assets, their checks, partitions, job, schedule and freshness checks."""
