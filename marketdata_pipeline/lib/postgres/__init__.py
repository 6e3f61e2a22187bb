"""Postgres: embedded server, schema migrations, IO manager, tracked symbols."""
