"""The append-only, hash-chained journal, in any SQLAlchemy database.

Every row is ``(seq, kind, slot_start, ref, body, prev_hash, hash)`` with
``hash = keccak256(prev_hash || seq (8 bytes) || kind || 0x00 || body)`` and the
first row's ``prev_hash`` 32 zero bytes: changing, inserting or deleting any row breaks
the chain from there on. ``body`` is canonical JSON (sorted keys, no spaces).

Rows are buffered and written by :meth:`Journal.flush` in one transaction (the
simulation flushes once per slot), so after a crash the database holds a prefix of the
journal that ends at a flush. SQLite (the default, a file) runs in WAL mode with
``synchronous=NORMAL``; PostgreSQL works by URL (``postgresql+psycopg://...``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
)
from sqlalchemy.pool import StaticPool

from p2penergy.ledger.actions import canonical_json
from p2penergy.ledger.hashing import keccak

GENESIS_PREV = b"\x00" * 32
KINDS = ("genesis", "participant", "batch", "order", "modify", "cancel", "reject", "self_cancel", "trade", "close",
         "meter", "balancing", "certificate", "commit", "chain_tx")  # what each holds: ledger/engine.py
_KIND_SET = frozenset(KINDS)

metadata = MetaData()
journal_table = Table(
    "journal", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),
    Column("slot_start", BigInteger, nullable=True, index=True),
    Column("ref", String(200), nullable=True),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    # Not indexed: no query looks a row up by its hash, and hashes are unique because seq is (the hash
    # covers seq). A unique index on this random key made every flush rewrite about one index page per
    # row: three quarters of a month's journal writes. (Journals made before keep their index.)
    Column("hash", String(64), nullable=False),
)
meta_table = Table(
    "ledger_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


class JournalError(RuntimeError):
    """The journal is not usable (bad URL, or a broken chain when opening for writing)."""


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One journal row. ``slot_start`` is Unix seconds of the delivery slot, if any."""

    seq: int
    kind: str
    slot_start: int | None
    ref: str | None
    body: str
    prev_hash: str
    hash: str

    def expected_hash(self) -> str:
        return row_hash(bytes.fromhex(self.prev_hash), self.seq, self.kind, self.body).hex()


def row_bytes(kind: str, body: str) -> bytes:
    """``kind || 0x00 || body`` in bytes: what a row's hash (after its predecessor and ``seq``) and its
    Merkle leaf (``ledger/engine.py``, ``leaf_of``) cover."""
    return kind.encode("ascii") + b"\x00" + body.encode("utf-8")


def chain_hash(prev: bytes, seq: int, row: bytes) -> bytes:
    """The hash of row ``seq`` after ``prev``: ``keccak256(prev || seq (8 bytes, big-endian) || row)``
    with ``row`` from :func:`row_bytes`."""
    return keccak(prev + seq.to_bytes(8, "big") + row)


def row_hash(prev: bytes, seq: int, kind: str, body: str) -> bytes:
    return chain_hash(prev, seq, row_bytes(kind, body))


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def make_engine(url: str, checkpoint_pages: int | None = None) -> Engine:
    """Engine for ``url``; SQLite files get WAL mode, NORMAL sync and a busy timeout.

    ``checkpoint_pages``: SQLite's WAL auto-checkpoint interval in pages (``None``: SQLite's
    default, 1000 pages; ignored by other databases). Each checkpoint copies the WAL into the
    database file and fsyncs both; the journal's random ``hash`` index spreads every flush
    over many pages, so frequent checkpoints rewrite the same pages again and again.
    """
    if checkpoint_pages is not None and (isinstance(checkpoint_pages, bool)
                                         or not isinstance(checkpoint_pages, int) or checkpoint_pages < 1):
        raise JournalError(f"checkpoint_pages: a whole number of pages >= 1 (or None), got {checkpoint_pages!r}")
    try:
        in_memory = url.endswith(":memory:") or url.rstrip("/") in ("sqlite:", "sqlite+pysqlite:")
        if url.startswith("sqlite") and in_memory:
            engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            engine = create_engine(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError / NoSuchModuleError
        raise JournalError(f"db_url: not a usable SQLAlchemy URL ({exc})") from exc
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            if checkpoint_pages is not None:
                cur.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
            cur.close()
    return engine


class Journal:
    """Appends hash-chained rows (buffered; :meth:`flush` writes them in one transaction)."""

    def __init__(self, url: str, create: bool = True, checkpoint_pages: int | None = None) -> None:
        """Open the journal at ``url``; with ``create`` (the default) its tables are made if
        missing, without (readers such as the audit) a database holding none is refused.
        ``checkpoint_pages``: see :func:`make_engine` (SQLite only)."""
        self.url = url
        self.engine = make_engine(url, checkpoint_pages)
        try:
            if create:
                metadata.create_all(self.engine)
            elif not inspect(self.engine).has_table("journal"):
                raise JournalError(f"db_url: {url} holds no journal table (not a p2penergy journal)")
        except JournalError:
            self.engine.dispose()
            raise
        except Exception as exc:  # the driver's connection errors: name the URL, not a traceback
            self.engine.dispose()
            raise JournalError(f"db_url: cannot open {url} ({type(exc).__name__}: {exc})") from exc
        self._buffer: list[tuple[Any, ...]] = []
        mark = {"qmark": "?", "numeric": ":{}"}.get(self.engine.dialect.paramstyle, "%s")  # psycopg: %s
        marks = ", ".join(mark.format(i + 1) for i in range(len(journal_table.columns)))
        columns = ", ".join(c.name for c in journal_table.columns)
        self._insert_sql = f"INSERT INTO journal ({columns}) VALUES ({marks})"
        self.last_body = ""  # canonical JSON of the last appended row
        # ``kind || 0x00 || body`` of the last appended row in bytes: what its hash and its Merkle leaf
        # (``ledger/engine.py``, ``leaf_of``) cover, encoded once
        self.last_tail = b""
        with self.engine.connect() as conn:
            last = conn.execute(
                select(journal_table.c.seq, journal_table.c.hash).order_by(journal_table.c.seq.desc()).limit(1)
            ).first()
        self._seq = last.seq if last else 0
        self._head = bytes.fromhex(last.hash) if last else GENESIS_PREV
        self._head_hex = self._head.hex()

    @property
    def head(self) -> tuple[int, bytes]:
        """``(seq, hash)`` of the last appended row (``(0, zeros)`` when empty)."""
        return self._seq, self._head

    def append(self, kind: str, body: dict[str, Any], slot_start: int | None = None,
               ref: str | None = None) -> tuple[int, bytes]:
        """Buffer one row; returns its ``(seq, hash)``."""
        if kind not in _KIND_SET:
            raise JournalError(f"kind: one of {', '.join(KINDS)}; got {kind!r}")
        text = canonical_json(body)
        seq = self._seq + 1
        tail = row_bytes(kind, text)  # encoded once for the hash and the Merkle leaf
        digest = chain_hash(self._head, seq, tail)
        digest_hex = digest.hex()
        self._buffer.append((seq, kind, slot_start, ref, text, self._head_hex, digest_hex))
        self._seq, self._head, self._head_hex = seq, digest, digest_hex
        self.last_body = text
        self.last_tail = tail
        return seq, digest

    def flush(self) -> int:
        """Write buffered rows in one transaction; returns how many were written."""
        if not self._buffer:
            return 0
        rows, self._buffer = self._buffer, []
        with self.engine.begin() as conn:
            # The driver's executemany with plain tuples: 5x faster than Core's insert() with dicts.
            conn.exec_driver_sql(self._insert_sql, rows)
        return len(rows)

    def rows(self, kinds: tuple[str, ...] | None = None, batch: int = 5000) -> Iterator[JournalRow]:
        """Stream flushed rows in ``seq`` order (optionally only some kinds), bounded memory."""
        self.flush()
        after = 0
        t = journal_table
        while True:
            query = select(t).where(t.c.seq > after).order_by(t.c.seq).limit(batch)
            if kinds is not None:
                query = query.where(t.c.kind.in_(kinds))
            with self.engine.connect() as conn:
                chunk = [JournalRow(*r) for r in conn.execute(query)]
            if not chunk:
                return
            yield from chunk
            after = chunk[-1].seq

    def get_meta(self, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(select(meta_table.c.value).where(meta_table.c.key == key)).scalar()

    def set_meta(self, values: dict[str, str]) -> None:
        with self.engine.begin() as conn:
            for key, value in values.items():
                conn.execute(meta_table.delete().where(meta_table.c.key == key))
                conn.execute(insert(meta_table).values(key=key, value=value))

    def close(self) -> None:
        self.flush()
        self.engine.dispose()
