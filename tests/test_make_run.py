"""`make run PORT=…`: the server listens on that port and the customers' links point there.

The real Makefile target, run as a newcomer would (install, migrate, seed, serve), on a
database that already holds a campaign and a due request — so the seed is a no-op and the
server's first scheduler tick sends the message whose link we read."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app import create_app
from app.extensions import db
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def due_request_db(tmp_path, migrated_db):
    import shutil

    from app.campaign_admin.services import create_campaign
    from app.clock import utcnow
    from app.intake.schema import parse_order_event
    from app.intake.services import ingest_order_event
    from tests.factories import order_body

    db_file = tmp_path / "run.db"
    shutil.copy(migrated_db, db_file)
    app = create_app(make_config(tmp_path, db_file))
    with app.app_context():
        create_campaign(utcnow(), name="Reviews", delay_days=0, channel="email")
        body = order_body(occurred_at=utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"))
        ingest_order_event(parse_order_event(body), body, utcnow())
        db.session.commit()
        db.engine.dispose()
    return db_file


def test_make_run_on_another_port_serves_there_with_matching_links(due_request_db, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_BASE_URL", "APP_ENV", "FLASK_RUN_PORT")}
    env.update(DATABASE_URL=f"sqlite:///{due_request_db}", SCHEDULER_INTERVAL_SECONDS="1", LOG_LEVEL="WARNING")
    log = open(tmp_path / "make-run.log", "w+")
    server = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        link = None
        engine = create_engine(f"sqlite:///{due_request_db}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and link is None:
            assert server.poll() is None, (tmp_path / "make-run.log").read_text()
            time.sleep(0.5)
            try:
                with engine.connect() as conn:
                    link = conn.execute(text("SELECT text FROM outbox_messages WHERE request_id IS NOT NULL")).scalar()
            except Exception:  # noqa: BLE001 - the database is busy with the migration or the tick
                link = None
        engine.dispose()
        assert link, "the first tick sent nothing: " + (tmp_path / "make-run.log").read_text()
        assert f"http://127.0.0.1:{port}/r/" in link
        token_link = link.split(f"http://127.0.0.1:{port}/r/")[1].split()[0]
        from urllib.request import urlopen

        with urlopen(f"http://127.0.0.1:{port}/r/{token_link}", timeout=10) as page:  # the link works there
            assert page.status == 200
        assert f"Open http://127.0.0.1:{port} and log in" in (tmp_path / "make-run.log").read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
        log.close()
