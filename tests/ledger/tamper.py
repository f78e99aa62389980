"""What an operator covering its tracks would do to a journal: edit rows, delete one, re-hash the rest."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import update

from p2penergy.ledger.journal import Journal, JournalRow, journal_table, row_hash


def rewrite_chain_from(journal: Journal, seq: int, edit: Callable[[JournalRow, bytes], str]) -> None:
    """Replace the body of every row from ``seq`` on by ``edit(row, new prev hash)`` and re-hash the
    chain from there to its end (so the hash chain alone no longer shows the change)."""
    rows = list(journal.rows())
    prev = bytes.fromhex(rows[seq - 2].hash) if seq > 1 else b"\x00" * 32
    with journal.engine.begin() as conn:
        for r in rows[seq - 1:]:
            body = edit(r, prev)
            h = row_hash(prev, r.seq, r.kind, body)
            conn.execute(update(journal_table).where(journal_table.c.seq == r.seq)
                         .values(body=body, prev_hash=prev.hex(), hash=h.hex()))
            prev = h


def set_body(journal: Journal, seq: int, body: str) -> None:
    """Edit one row's body in place (its hash no longer matches)."""
    with journal.engine.begin() as conn:
        conn.execute(update(journal_table).where(journal_table.c.seq == seq).values(body=body))


def delete_row(journal: Journal, seq: int) -> None:
    with journal.engine.begin() as conn:
        conn.execute(journal_table.delete().where(journal_table.c.seq == seq))
