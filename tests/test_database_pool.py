"""The connection pool keeps as many connections as the threads that use the database at
once (``DATABASE_POOL_SIZE``). SQLAlchemy's default keeps 5: with gunicorn's 8 threads a
connection was closed and a new one opened at almost every request (on PostgreSQL a new
server process each time, and every statement planned again)."""

import threading

from sqlalchemy import event

from app.extensions import db


def opened_by_bursts(app, threads, bursts):
    """New connections the engine opened while ``threads`` threads held one each at once,
    ``bursts`` times."""
    opened = []
    with app.app_context():
        engine = db.engine
        event.listen(engine, "connect", lambda *_: opened.append(1))
        all_holding = threading.Barrier(threads)

        def hold():
            connection = engine.raw_connection()  # a checkout, no transaction (SQLite's would take the write lock)
            try:
                all_holding.wait(timeout=10)
            finally:
                connection.close()

        counts = []
        for _ in range(bursts):
            workers = [threading.Thread(target=hold) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            counts.append(len(opened))
        return [after - before for before, after in zip([0, *counts], counts, strict=False)]


def test_eight_threads_at_once_reuse_the_connections_of_the_first_burst(app_factory):
    app = app_factory()  # the default DATABASE_POOL_SIZE
    assert opened_by_bursts(app, threads=8, bursts=3) == [8, 0, 0]


def test_a_pool_smaller_than_the_threads_opens_connections_again_at_every_burst(app_factory):
    app = app_factory(DATABASE_POOL_SIZE=5)  # SQLAlchemy's own default
    assert opened_by_bursts(app, threads=8, bursts=3) == [8, 3, 3]
