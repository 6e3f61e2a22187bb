"""Reusable building blocks: API client, Postgres storage, validation."""
