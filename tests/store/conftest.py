"""Store test fixtures: a DuckDB path per test, and a PostgreSQL server per
session (``$OTELPLUG_TEST_PG_DSN``, or a throwaway cluster) with a fresh
database per test."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.requirements import missing

from . import pg


@pytest.fixture(scope="session")
def pg_server():
    dsn = os.environ.get("OTELPLUG_TEST_PG_DSN")
    if dsn:
        yield None, dsn
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        missing("the Python package psycopg", "pip install -e '.[test]'")
    if not pg.available():
        missing(f"PostgreSQL server binaries in {pg.PG_BIN}",
                "apt-get install postgresql (or set OTELPLUG_TEST_PG_DSN)")
    cluster = pg.Cluster()
    cluster.start()
    try:
        yield cluster, cluster.dsn
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg_server):
    _, dsn = pg_server
    return pg.new_database(dsn, f"otelplug_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def duckdb_url(tmp_path):
    return f"duckdb://{tmp_path}/store.duckdb"


@pytest.fixture(params=["duckdb", "postgresql"])
def store_url(request):
    """Each test using this runs against both backends."""
    if request.param == "duckdb":
        return request.getfixturevalue("duckdb_url")
    return request.getfixturevalue("pg_url")
