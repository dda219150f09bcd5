"""Write transactions that wait for another connection's writer instead of failing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A transaction that will write: like `db.atomic()`, but `BEGIN IMMEDIATE`.

    The daemon and a CLI command (a technician's `appliance deployment end`, a purge) open the same file on
    two connections. With sqlite-utils' deferred BEGIN, a transaction that reads first and then writes
    fails at once with "database is locked" if the other connection committed in between (its snapshot is
    stale, so SQLite cannot wait). IMMEDIATE takes the write lock up front, so the second writer waits (up
    to the connection's 30 s timeout) instead. Nested use is a savepoint, as with atomic().
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        if db.conn.in_transaction:
            db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")
