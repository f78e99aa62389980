"""The hash-chained journal, on SQLite and on PostgreSQL (``db_url`` runs each test on both)."""

import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from conftest import SETTINGS
from p2penergy.ledger import create_run_engine
from p2penergy.ledger.journal import GENESIS_PREV, Journal, JournalError, journal_table, row_hash, sqlite_url
from p2penergy.ledger.run_folder import JOURNAL_FILE, RUN_CHECKPOINT_PAGES


def test_rows_are_hash_chained(db_url):
    j = Journal(db_url)
    _, h1 = j.append("meter", {"participant": "a", "values": {"load_wh": 5}}, 100, "a")
    _, h2 = j.append("meter", {"participant": "b", "values": {"load_wh": 7}}, 100, "b")
    j.flush()
    rows = list(j.rows())
    assert [r.seq for r in rows] == [1, 2]
    assert h1 == row_hash(GENESIS_PREV, 1, "meter", '{"participant":"a","values":{"load_wh":5}}')
    assert rows[1].prev_hash == h1.hex() and rows[1].hash == h2.hex()
    assert all(r.expected_hash() == r.hash for r in rows)
    j.close()


def test_sqlite_runs_in_wal_mode(tmp_path):
    path = tmp_path / "j.sqlite"
    j = Journal(sqlite_url(path))
    j.append("meter", {"x": 1})
    j.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _autocheckpoint(journal: Journal) -> int:
    with journal.engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()


def test_sqlite_checkpoint_interval_is_sqlites_unless_given(tmp_path):
    default = Journal(sqlite_url(tmp_path / "a.sqlite"))
    given_ = Journal(sqlite_url(tmp_path / "b.sqlite"), checkpoint_pages=1234)
    assert _autocheckpoint(default) == 1000 and _autocheckpoint(given_) == 1234
    default.close()
    given_.close()


@pytest.mark.parametrize("bad", [0, -5, 2.5, "100", True])
def test_a_bad_checkpoint_interval_is_refused_by_name(tmp_path, bad):
    with pytest.raises(JournalError, match="checkpoint_pages"):
        Journal(sqlite_url(tmp_path / "j.sqlite"), checkpoint_pages=bad)


def test_a_run_journal_checkpoints_rarely_and_is_whole_in_its_file_after_close(tmp_path):
    """A run's journal grows its WAL past SQLite's default interval and is checkpointed
    into journal.sqlite when the engine closes: the file alone then holds every row."""
    eng = create_run_engine(SETTINGS, run_dir=tmp_path, seed=3)
    journal = eng.journal
    assert _autocheckpoint(journal) == RUN_CHECKPOINT_PAGES > 1000
    for i in range(8000):  # ~4 MB of bodies and as much index: > 1000 pages of WAL
        journal.append("meter", {"participant": f"p{i}", "values": {"load_wh": i}, "pad": "x" * 400}, 100, "p")
    journal.flush()
    wal = tmp_path / (JOURNAL_FILE + "-wal")
    assert wal.stat().st_size > 1000 * 4096  # not checkpointed at SQLite's default interval
    seq, head = journal.head
    eng.close()
    assert not wal.exists()
    with sqlite3.connect(tmp_path / JOURNAL_FILE) as conn:
        assert conn.execute("SELECT max(seq), count(*) FROM journal").fetchone() == (seq, seq)
        assert conn.execute("SELECT hash FROM journal WHERE seq = ?", (seq,)).fetchone()[0] == head.hex()


def test_unflushed_rows_are_lost_whole_and_the_chain_continues(db_url):
    url = db_url
    j = Journal(url)
    j.append("meter", {"n": 1})
    j.flush()
    j.append("meter", {"n": 2})  # "crash": never flushed
    j.engine.dispose()
    again = Journal(url)
    assert again.head[0] == 1
    again.append("meter", {"n": 3})
    again.flush()
    rows = list(again.rows())
    assert [r.seq for r in rows] == [1, 2]
    assert rows[1].prev_hash == rows[0].hash and rows[1].body == '{"n":3}'


def test_a_failed_transaction_writes_nothing(db_url):
    j = Journal(db_url)
    j.append("meter", {"n": 1})
    j.flush()
    j.append("meter", {"n": 2})
    j._buffer.append(j._buffer[0])  # a duplicate seq: the insert fails
    with pytest.raises(IntegrityError):
        j.flush()
    assert [r.seq for r in Journal(j.url).rows()] == [1]


def test_altering_a_row_breaks_its_hash(db_url):
    j = Journal(db_url)
    for n in range(5):
        j.append("meter", {"n": n})
    j.flush()
    with j.engine.begin() as conn:
        conn.execute(update(journal_table).where(journal_table.c.seq == 3).values(body='{"n":99}'))
    bad = [r.seq for r in j.rows() if r.expected_hash() != r.hash]
    assert bad == [3]


@settings(max_examples=20, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), min_size=1, max_size=30))
def test_chain_verifies_for_any_bodies(bodies):
    j = Journal("sqlite://")
    for b in bodies:
        j.append("certificate", b, 1)
    prev = GENESIS_PREV.hex()
    for r in j.rows():
        assert r.prev_hash == prev and r.expected_hash() == r.hash
        prev = r.hash
    assert prev == j.head[1].hex()
