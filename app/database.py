"""Engine set-up: SQLite gets WAL, a busy timeout and write-ready transactions."""

from sqlalchemy import event

from app.extensions import db


def configure_engine(app):
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        # In WAL mode a deferred transaction that reads and then writes after another
        # connection committed fails at once with "database is locked". Taking the write
        # lock up front makes concurrent writers wait (busy_timeout) instead.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
