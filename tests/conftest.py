"""Shared fixtures: real servers (moto, PostgreSQL) live in their own modules."""

pytest_plugins = ["tests.moto_server", "tests.pg_server"]
