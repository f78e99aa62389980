"""Fixtures shared by every test folder: a journal database on SQLite or on a real PostgreSQL server.

``db_url`` is parametrized over both databases, so a test that takes it runs twice
(``[sqlite]`` and ``[postgresql]``); ``pg_url`` is a fresh PostgreSQL database alone.
The PostgreSQL server is the one ``scripts/setup.sh`` installs and starts on loopback
(``P2PENERGY_TEST_PG_URL``); without it the PostgreSQL tests fail, saying so (they never skip).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

DATABASES = ("sqlite", "postgresql")
# Copying a template database fails while any session is connected to it, and PostgreSQL's autovacuum
# connects now and then for a moment: try again this many times, half a second apart.
TEMPLATE_BUSY_RETRIES = 20


def _admin_url() -> str:
    url = os.environ.get("P2PENERGY_TEST_PG_URL")
    if not url:
        raise RuntimeError("P2PENERGY_TEST_PG_URL is not set: run the tests through scripts/test.sh "
                           "(scripts/setup.sh installs and starts PostgreSQL)")
    return url


def _plain(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (psycopg connects without the dialect prefix)."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_pg_database(template: str | None = None) -> str:
    """A new database on the test server (optionally a copy of ``template``'s database); returns its URL."""
    import psycopg

    admin_url = _admin_url()
    name = f"p2p_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
    for attempt in range(TEMPLATE_BUSY_RETRIES + 1):
        try:
            with psycopg.connect(_plain(admin_url), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}"{copy}')
            break
        except psycopg.errors.ObjectInUse:  # a template must have no session: autovacuum may hold one briefly
            if attempt == TEMPLATE_BUSY_RETRIES:
                raise
            time.sleep(0.5)
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_pg_database(url: str) -> None:
    import psycopg

    with psycopg.connect(_plain(_admin_url()), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


# Modules that run for minutes of wall time, longest first (pytest --durations on main, 2 December 2026): the
# suite starts with them, so under pytest-xdist no worker is left running one of them alone at the end
# (scripts/test.sh keeps this order: --no-loadscope-reorder). The rest keep their order.
SLOW_MODULES = (
    "tests/sweeps/test_sweep.py",
    "tests/sim/test_simulate_dst.py",
    "tests/sim/test_simulate.py",
    "tests/service/test_restart.py",
    "tests/service/test_demo.py",
    "tests/service/test_agents_live.py",
    "tests/service/test_dashboard.py",
    "tests/sim/test_no_lookahead.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {module: n for n, module in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable: modules stay whole


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL test server (dropped afterwards)."""
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty journal database: ``tmp_path/journal.sqlite``, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.sqlite'}"
    return str(request.getfixturevalue("pg_url"))
