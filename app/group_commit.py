"""Small write transactions of one process's threads committed together (SQLite).

SQLite lets one writer in at a time, and each commit waits for the disk (FULL
durability, docs/durability.md). Under a burst of webhooks every thread of a web worker
queued for the write lock to run three INSERTs and wait for its own commit, and the lock
was busy nine tenths of the time. ``write_together`` lets the thread at the head of the
queue write for all the threads waiting behind it: one transaction, each thread's work in
its own savepoint, one commit; each thread then goes on with its own result.

- ``work(connection)`` runs in whichever thread writes: it may use only the connection it
  is given (no ``db.session``, no thread-locals) and returns plain values.
- Its IntegrityError undoes its own savepoint only, and is raised in its own thread (the
  others' work is committed); any other error of a work, or of the commit, is raised in
  every thread whose work it undid.
- A thread returns only once the transaction holding its work is committed.
"""

import threading
import weakref

from sqlalchemy.exc import IntegrityError


class _Job:
    __slots__ = ("done", "error", "result", "work")

    def __init__(self, work):
        self.work, self.result, self.error, self.done = work, None, None, False

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class _Group:
    """The threads of this process writing to one engine's database."""

    def __init__(self):
        self.changed = threading.Condition()
        self.waiting = []
        self.writing = False


_groups = {}  # database URL → its group: two engines on one database file share one
_of_engine = weakref.WeakKeyDictionary()  # engine → its group, found once per engine
_groups_lock = threading.Lock()


def _group(engine):
    group = _of_engine.get(engine)
    if group is None:
        with _groups_lock:
            url = engine.url.render_as_string(hide_password=False)
            group = _of_engine[engine] = _groups.setdefault(url, _Group())
    return group


def write_together(engine, work):
    """``work(connection)``'s result, once committed with whatever the other threads of
    this process gave meanwhile (see the module docstring)."""
    group, job = _group(engine), _Job(work)
    with group.changed:
        group.waiting.append(job)
        while group.writing and not job.done:
            group.changed.wait()
        if job.done:
            return job.outcome()
        group.writing = True
    batch = []
    try:
        _write(engine, group, batch)
    finally:
        with group.changed:
            for each in batch:
                each.done = True
            group.writing = False
            group.changed.notify_all()
    return job.outcome()


def _write(engine, group, batch):
    """One transaction for the work waiting once the write lock is held (``batch``: the
    jobs it took, whose results or errors are set)."""
    try:
        with engine.connect() as connection, connection.begin():
            # Taken once the lock is held: what was queued while it was awaited goes in too.
            with group.changed:
                batch[:], group.waiting = group.waiting, []
            for job in batch:
                # A plain savepoint (SQLAlchemy's begin_nested costs more than the work).
                connection.exec_driver_sql("SAVEPOINT together")
                try:
                    job.result = job.work(connection)
                except IntegrityError as exc:
                    connection.exec_driver_sql("ROLLBACK TO SAVEPOINT together")
                    job.result, job.error = None, exc
                connection.exec_driver_sql("RELEASE SAVEPOINT together")
    except Exception as exc:  # noqa: BLE001 - handed to every thread whose work is undone
        with group.changed:
            if not batch:  # the lock was not had: the work waiting for it fails with this
                batch[:], group.waiting = group.waiting, []
        for job in batch:
            if job.error is None:
                job.result, job.error = None, exc
