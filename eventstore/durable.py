"""Durable settings on every connection the event store opens, and the check a site runs at start.

Nothing here rests on a default: the library's SQLite module sets only `journal_mode=WAL`, so
`synchronous=FULL` is set on each connection as it is made (a commit is then fsynced before it
returns); PostgreSQL connections are opened with `synchronous_commit=on`. SQLAlchemy checks a
pooled connection before handing it out (pre-ping), so a database server that went away and came
back is reconnected to without a restart.
"""

from __future__ import annotations

from eventsourcing.sqlite import SQLiteConnectionPool, SQLiteFactory
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

    @classmethod
    def like(cls, pool: SQLiteConnectionPool) -> "FullSyncSQLitePool":
        return cls(db_name=pool.db_name, lock_timeout=pool.lock_timeout, pool_size=pool.pool_size,
                   max_overflow=pool.max_overflow, pool_timeout=pool.pool_timeout,
                   max_age=pool.max_age, pre_ping=pool.pre_ping)


class DurableSQLiteFactory(SQLiteFactory):
    """`eventsourcing.sqlite` whose every connection runs with synchronous=FULL."""

    def __init__(self, env):
        super().__init__(env)
        plain = self.datastore.pool  # made by the library, not yet connected
        self.datastore.pool = FullSyncSQLitePool.like(plain)
        plain.close()


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
        found = {name: sqlite_pragma(datastore, name) for name in ("journal_mode", "synchronous")}
        wanted = {"journal_mode": "wal", "synchronous": SQLITE_SYNCHRONOUS_FULL}
    wrong = [f"{name} is {found[name]!r}, not {value!r}"
             for name, value in wanted.items() if str(found[name]).lower() != str(value)]
    if wrong:
        raise StorageNotDurable(
            f"The event store would not write durably ({'; '.join(wrong)}); this site will not start.")


def sqlite_pragma(datastore, name: str):
    """A PRAGMA as the live store's own connections see it (the library's SQLite module)."""
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]


def sqlalchemy_value(engine, statement: str):
    """One value as a fresh connection of the engine reads it."""
    with engine.connect() as connection:
        return connection.execute(text(statement)).scalar()
