"""The store fixtures (DuckDB per test, PostgreSQL per session) for the
trace tests that read and write the store."""
from tests.store.conftest import duckdb_url, pg_server, pg_url, store_url  # noqa: F401
