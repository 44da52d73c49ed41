"""The transaction boundary's helpers, for views, commands and jobs (services only flush).

``commit_with_retry`` runs work that can lose a unique-constraint race to a concurrent
request (two deliveries of one webhook) and commits it; ``log_after_commit`` keeps a
service's log lines until that commit, so a log write never hands the CPU to other
threads while this one holds the write lock, and a rolled-back pass logs nothing.
"""

from sqlalchemy.exc import IntegrityError

from app.extensions import db

PENDING_LOG = "log lines after commit"


def log_after_commit(logger, *line):
    """``logger.info(*line)`` once the session's transaction is committed by ``commit_with_retry``."""
    db.session.info.setdefault(PENDING_LOG, []).append((logger, line))


def commit_with_retry(work, *, attempts=3):
    """``work(attempt)`` (attempt 0, 1, …) flushes; this commits and returns its result.

    On an IntegrityError the transaction is rolled back and ``work`` runs again: the next
    pass sees the winner's rows (a duplicate). The last attempt's error is raised. The
    commit does not expire what the work loaded or wrote: the answer is built from those
    objects without another transaction (on SQLite one more wait for the lock)."""
    for attempt in range(attempts):
        try:
            result = work(attempt)
            _commit_keeping_objects()
        except IntegrityError:
            db.session.rollback()
            db.session.info.pop(PENDING_LOG, None)
            if attempt == attempts - 1:
                raise
            continue
        except Exception:
            db.session.info.pop(PENDING_LOG, None)  # the caller rolls back: nothing happened
            raise
        for logger, line in db.session.info.pop(PENDING_LOG, ()):
            logger.info(*line)
        return result
    return None  # not reached: the last attempt returns or raises


def _commit_keeping_objects():
    session = db.session()
    if not session.in_transaction():
        # Nothing was read, added or changed through the session (a PostgreSQL delivery
        # writes on its own connection): a commit would begin a transaction to end it.
        return
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire_on_commit
