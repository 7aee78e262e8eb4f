"""Durable settings on every connection the event store opens, and the check a site runs at start.

Nothing here rests on a default: the library's SQLite module sets only `journal_mode=WAL`, so
`synchronous=FULL` is set on each connection as it is made (a commit is then fsynced before it
returns); PostgreSQL connections are opened with `synchronous_commit=on`. SQLAlchemy checks a
pooled connection before handing it out (pre-ping), so a database server that went away and came
back is reconnected to without a restart.
"""

from __future__ import annotations

import threading

from eventsourcing.sqlite import (
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
    SQLiteFactory,
    SQLiteTransaction,
)
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from sqlalchemy import event, text

from domain.errors import StorageNotDurable

SQLITE_SYNCHRONOUS_FULL = 2  # what `PRAGMA synchronous` reads back for FULL


class FullSyncSQLitePool(SQLiteConnectionPool):
    def _create_connection(self):
        connection = super()._create_connection()
        # The library keeps the sqlite3 connection private and offers no hook of its own.
        connection._sqlite_conn.execute("PRAGMA synchronous=FULL")
        return connection

    def new_connection(self) -> SQLiteConnection:
        """A connection made as the pool makes its own, but not the pool's to hand out."""
        return self._create_connection()

    @classmethod
    def like(cls, pool: SQLiteConnectionPool) -> "FullSyncSQLitePool":
        return cls(db_name=pool.db_name, lock_timeout=pool.lock_timeout, pool_size=pool.pool_size,
                   max_overflow=pool.max_overflow, pool_timeout=pool.pool_timeout,
                   max_age=pool.max_age, pre_ping=pool.pre_ping)


class OneWriterSQLiteDatastore(SQLiteDatastore):
    """The library's SQLite datastore, whose writes all go through one connection of its own.

    SQLite takes one writer at a time, and the store hands it one batch at a time anyway; taking
    a connection from the pool for each write and giving it back (its semaphore, writer lock and
    clock, and two generator context managers) was ~25 us of the ~60 us of Python a commit
    costs here. The writer connection is made by the pool (synchronous=FULL), kept, and used
    one write at a time under a lock; each write is the library's own SQLiteTransaction (BEGIN,
    then COMMIT, or ROLLBACK on an error; sqlite3's errors raised as the library's). Reads still
    take connections from the pool."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.writes = threading.Lock()
        self._writer: SQLiteConnection | None = None

    def transaction(self, *, commit: bool):
        if not commit:
            return super().transaction(commit=False)
        return _Write(self)

    def writer(self) -> SQLiteConnection:
        """The writer connection (made on first use); only with `writes` held."""
        if self._writer is None:
            self._writer = self.pool.new_connection()
        return self._writer

    def close(self) -> None:
        with self.writes:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        super().close()


class _Write:
    """One write transaction on the datastore's writer connection (OneWriterSQLiteDatastore)."""

    __slots__ = ("datastore", "transaction", "cursor")

    def __init__(self, datastore: OneWriterSQLiteDatastore):
        self.datastore = datastore

    def __enter__(self) -> SQLiteCursor:
        self.datastore.writes.acquire()
        try:
            self.transaction = SQLiteTransaction(self.datastore.writer(), commit=True)
            self.cursor = self.transaction.__enter__()  # BEGIN
        except BaseException:
            self.datastore.writes.release()
            raise
        return self.cursor

    def __exit__(self, exc_type, exc, traceback) -> None:
        try:
            self.transaction.__exit__(exc_type, exc, traceback)  # COMMIT, or ROLLBACK and raise
        except BaseException:
            # A COMMIT that failed (busy, a full or failing disk) may leave the transaction open
            # on the one connection every later write takes: end it (a no-op if none is open).
            try:
                self.transaction.connection.rollback()
            except Exception:
                pass
            raise
        finally:
            self.cursor.sqlite_cursor.close()
            self.datastore.writes.release()


class DurableSQLiteFactory(SQLiteFactory):
    """`eventsourcing.sqlite` whose every connection runs with synchronous=FULL, and whose
    writes go through one connection (OneWriterSQLiteDatastore)."""

    def __init__(self, env):
        super().__init__(env)
        plain = self.datastore  # made by the library, not yet connected
        self.datastore = OneWriterSQLiteDatastore(
            db_name=plain.pool.db_name, lock_timeout=plain.pool.lock_timeout,
            single_row_tracking=plain.single_row_tracking, originator_id_type=plain.originator_id_type)
        self.datastore.pool.close()
        self.datastore.pool = FullSyncSQLitePool.like(plain.pool)
        plain.pool.close()


def _on_connect(dialect_name: str):
    def setup(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if dialect_name == "sqlite":
                cursor.execute("PRAGMA synchronous=FULL")
            elif dialect_name == "postgresql":
                cursor.execute("SET synchronous_commit = on")
        finally:
            cursor.close()
        if dialect_name == "postgresql":
            dbapi_connection.commit()  # psycopg opens a transaction even for SET: keep it

    return setup


class DurableSQLAlchemyDatastore(SQLAlchemyDatastore):
    def __init__(self, **kwargs):
        if kwargs.get("url"):
            kwargs.setdefault("pool_pre_ping", True)
        super().__init__(**kwargs)
        if self.engine is not None:
            event.listen(self.engine, "connect", _on_connect(self.engine.dialect.name))


class DurableSQLAlchemyFactory(SQLAlchemyFactory):
    """`eventsourcing_sqlalchemy` with durable, self-healing connections."""

    datastore_class = DurableSQLAlchemyDatastore


def store_env(database: str, site_dir) -> dict[str, str]:
    """The library's settings for `database` ("sqlite", or an SQLAlchemy URL)."""
    if database == "sqlite":
        return {
            "PERSISTENCE_MODULE": f"{__name__}:DurableSQLiteFactory",
            "SQLITE_DBNAME": str(site_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }
    return {"PERSISTENCE_MODULE": f"{__name__}:DurableSQLAlchemyFactory", "SQLALCHEMY_URL": database}


def check_durable(datastore) -> None:
    """Read the durability settings back through the store's own connections; raise
    StorageNotDurable, naming what is wrong, unless a committed write is a forced write."""
    engine = getattr(datastore, "engine", None)
    dialect = engine.dialect.name if engine is not None else "sqlite"
    if dialect == "postgresql":
        found = {"synchronous_commit": sqlalchemy_value(engine, "SHOW synchronous_commit")}
        wanted = {"synchronous_commit": "on"}
    elif engine is not None:  # SQLite through SQLAlchemy
        found = {"journal_mode": sqlalchemy_value(engine, "PRAGMA journal_mode"),
                 "synchronous": sqlalchemy_value(engine, "PRAGMA synchronous")}
        wanted = {"journal_mode": "wal", "synchronous": SQLITE_SYNCHRONOUS_FULL}
    else:
        wanted = {"journal_mode": "wal", "synchronous": SQLITE_SYNCHRONOUS_FULL}
        found = {name: _sqlite_found(datastore, name, value) for name, value in wanted.items()}
    wrong = [f"{name} is {found[name]!r}, not {value!r}"
             for name, value in wanted.items() if str(found[name]).lower() != str(value)]
    if wrong:
        raise StorageNotDurable(
            f"The event store would not write durably ({'; '.join(wrong)}); this site will not start.")


def _sqlite_found(datastore, name: str, wanted):
    """A PRAGMA as the reading connections and the writer see it: the first value that is not
    `wanted`, if any is not."""
    values = [sqlite_pragma(datastore, name)]
    if isinstance(datastore, OneWriterSQLiteDatastore):
        values.append(sqlite_pragma(datastore, name, writer=True))
    return next((value for value in values if str(value).lower() != str(wanted)), values[0])


def sqlite_pragma(datastore, name: str, writer: bool = False):
    """A PRAGMA as the live store's own connections see it (the library's SQLite module): a
    reading connection's, or (`writer`) the one its writes go through."""
    with datastore.transaction(commit=writer) as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def sqlalchemy_value(engine, statement: str):
    """One value as a fresh connection of the engine reads it."""
    with engine.connect() as connection:
        return connection.execute(text(statement)).scalar()
