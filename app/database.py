"""Engine set-up: SQLite gets WAL, a busy timeout and write-ready transactions.

SQLite lets one writer in at a time, and every transaction here begins with the write
lock (``BEGIN IMMEDIATE``, see ``on_begin``). When it is taken, SQLite's own wait is a
sleep that grows to 100 ms between retries: under a burst of webhooks the lock sat free
while sixteen writers slept, and a webhook answered after 1.7 s though each held the lock
for a few milliseconds. So our connections queue for the lock themselves first: a thread
lock per database file (the threads of one process) and an ``flock`` on a file beside it
(the processes: gunicorn's workers, the ``flask`` command line), both woken as soon as
the holder commits or rolls back. SQLite's busy timeout remains the last word for any
writer outside this queue (a ``sqlite3`` shell).
"""

import os
import sqlite3
import threading
import time

from sqlalchemy import event, make_url

from app.extensions import db

try:
    import fcntl
except ImportError:  # not on POSIX: the thread lock and SQLite's busy timeout only
    fcntl = None

BUSY_TIMEOUT_SECONDS = 30
# Execution option for a transaction that only reads (the intake's read-ahead): on SQLite
# it begins without the write lock and sees a consistent WAL snapshot.
READ_ONLY = "read_only_snapshot"


def read_only_options(dialect):
    """Execution options for a session's reads that need no write transaction (the
    intake's read-ahead). SQLite: a read transaction without the write lock, on one WAL
    snapshot. PostgreSQL: autocommit, so no BEGIN and no COMMIT to wait for; each statement
    sees what is committed when it starts, as it would in a READ COMMITTED transaction."""
    if dialect.name == "postgresql":
        return {"isolation_level": "AUTOCOMMIT"}
    return {READ_ONLY: True}


def prepare_engine_options(app):
    """Before ``db.init_app``: a pool of ``DATABASE_POOL_SIZE`` connections (SQLAlchemy's
    default of 5 is fewer than gunicorn's threads: with 8, ``bench/webhooks.py`` saw 10 to
    13 new PostgreSQL sessions a second); SQLite connections of our own class (the write
    queue)."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if not _in_memory(uri):  # an in-memory SQLite database is one connection, not a pool
        options.setdefault("pool_size", app.config["DATABASE_POOL_SIZE"])
    if uri.startswith("sqlite"):
        options["connect_args"] = {**options.get("connect_args", {}), "factory": QueuedWriterConnection}
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _in_memory(uri):
    url = make_url(uri)
    return url.get_backend_name() == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    )


def configure_engine(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        configure_sqlite(db.engine, synchronous=app.config["SQLITE_SYNCHRONOUS"])


def relax_durability(engine):
    """From now on, this engine's SQLite connections commit without waiting for the disk
    (``synchronous=NORMAL``): for work that is thrown away and redone if the machine stops
    half-way, the demo seed (``flask seed-demo``), which commits hundreds of times."""
    if engine.dialect.name != "sqlite":
        return
    engine.dispose()

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def configure_sqlite(engine, *, synchronous="FULL"):
    """The settings every SQLite engine of ours uses (bench/webhooks.py's bare endpoint
    too, so that its comparison is fair). The engine's connections should be
    ``QueuedWriterConnection``s (``connect_args={"factory": ...}``) to queue for the lock.

    ``synchronous`` is SQLite's durability setting (``SQLITE_SYNCHRONOUS``): FULL writes
    each commit's WAL frames to disk before the commit returns; NORMAL leaves them to the
    next checkpoint, which a crash of the app survives but a power cut may not."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"SQLITE_SYNCHRONOUS must be FULL or NORMAL, got {synchronous!r}")

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        dbapi_connection = conn.connection.dbapi_connection
        if isinstance(dbapi_connection, QueuedWriterConnection):
            dbapi_connection.queue_for_write_lock()
        # In WAL mode a deferred transaction that reads and then writes after another
        # connection committed fails at once with "database is locked". Taking the write
        # lock up front makes concurrent writers wait instead.
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except Exception:
            if isinstance(dbapi_connection, QueuedWriterConnection):
                dbapi_connection.leave_write_queue()
            raise


class _WriteQueue:
    """One database file's queue in this process: a thread lock, then an flock."""

    _queues = {}
    _queues_lock = threading.Lock()

    def __init__(self, path):
        self.path = path + ".write-lock"
        self.thread_lock = threading.Lock()
        self.fd, self.fd_pid = None, None

    @classmethod
    def of(cls, database):
        if not isinstance(database, str) or database in ("", ":memory:") or database.startswith("file:"):
            return None
        path = os.path.abspath(database)
        with cls._queues_lock:
            return cls._queues.setdefault(path, cls(path))

    def acquire(self):
        """True when this connection may go ahead; False when waiting longer than the busy
        timeout (SQLite's own wait then decides, and reports "database is locked")."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        if not self.thread_lock.acquire(timeout=BUSY_TIMEOUT_SECONDS):
            return False
        if fcntl is None:
            return True
        try:
            fd = self._fd()
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.0005)  # one waiter per process polls; the others wait on thread_lock
        except OSError:
            pass  # no lock file possible (read-only folder): SQLite's own wait only
        self.thread_lock.release()
        return False

    def release(self):
        if fcntl is not None and self.fd is not None and self.fd_pid == os.getpid():
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.thread_lock.release()

    def _fd(self):
        # Opened per process: a descriptor inherited across fork shares its lock.
        if self.fd_pid != os.getpid():
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self.fd_pid = os.getpid()
        return self.fd


class QueuedWriterConnection(sqlite3.Connection):
    """A sqlite3 connection that queues for the write lock (see the module docstring) and
    leaves the queue when its transaction ends."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self._queue = _WriteQueue.of(database)
        self._queued = False

    def queue_for_write_lock(self):
        if self._queue is not None and not self._queued:
            self._queued = self._queue.acquire()

    def leave_write_queue(self):
        if self._queued:
            self._queued = False
            self._queue.release()

    def commit(self):
        try:
            super().commit()
        finally:
            self.leave_write_queue()

    def rollback(self):
        try:
            super().rollback()
        finally:
            self.leave_write_queue()

    def close(self):
        try:
            super().close()
        finally:
            self.leave_write_queue()
