"""The CLI tests' Dagster instance fixture, shared with the identity tests."""

from marketdata_pipeline_tests.test_cli import dagster_env  # noqa: F401 (a fixture)
