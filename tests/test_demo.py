"""`flask seed-demo` (make run): a populated dashboard for a newcomer, built by the real code paths."""

import re
import shutil
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from app.auth.models import Admin
from app.auth.services import create_admin
from app.campaigns.models import Campaign
from app.clock import as_utc
from app.demo.seed import DEMO_ADMIN, demo_login_path, seed_demo_admin
from app.extensions import db
from app.lifecycle import models
from app.lifecycle.states import STATUSES
from app.monitoring import rollup
from app.monitoring.alerts import current_breaches
from app.optouts.models import OptOut
from app.outbox.models import OutboxMessage
from app.testimonials.models import Testimonial
from tests.conftest import FakeClock, csrf_from, make_config, parse

START = "2026-11-20T12:00:00Z"  # the clock fixture's


@pytest.fixture(scope="module")
def seeded_demo(migrated_db, tmp_path_factory):
    """One run of `flask seed-demo` for the module (the seed is the slow part): the file
    it filled (its uploads folder beside it) and what it printed. Tests take a copy
    (``SEEDED``)."""
    folder = tmp_path_factory.mktemp("seeded-demo")
    db_file = folder / "seeded.db"
    shutil.copy(migrated_db, db_file)
    app = create_app(make_config(folder, db_file, CLOCK=FakeClock(parse(START))))
    result = app.test_cli_runner().invoke(args=["seed-demo"])
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return db_file, result


@pytest.fixture
def database_url(request, tmp_path, migrated_db):
    """This test's copy of the migrated database, or of the seeded demo one (``SEEDED``)."""
    source = migrated_db
    if getattr(request, "param", None) == "seeded":
        source = request.getfixturevalue("seeded_demo")[0]
        # The demo's videos and posters, in the uploads folder beside the file (make_config).
        shutil.copytree(source.parent / "uploads", tmp_path / "uploads", dirs_exist_ok=True)
    shutil.copy(source, tmp_path / "test.db")
    return f"sqlite:///{tmp_path / 'test.db'}"


SEEDED = pytest.mark.parametrize("database_url", ["seeded"], indirect=True)


def counts(column):
    return dict(db.session.execute(select(column, func.count()).group_by(column)).all())


@SEEDED
def test_seed_demo_on_an_empty_database_shows_every_status(app, client, clock, seeded_demo):
    result = seeded_demo[1]
    assert result.exit_code == 0, result.output
    assert "demo data seeded" in result.output and "demo@shop.example / " in result.output
    # make run is never silent while it seeds: a line per tenth of the way.
    assert re.findall(r"^\s+(\d+)%", result.output, re.M) == [str(n) for n in range(10, 101, 10)]
    # each tenth is a tenth of the month's history (its days advance), not a tenth of the
    # scheduler ticks, most of which are in the last hours
    days = re.findall(r"history up to (\d{4}-\d{2}-\d{2})", result.output)
    assert len(days) == 9 and len(set(days)) == 9 and days == sorted(days), days
    password = re.search(r"demo@shop\.example / (\S+)", result.output).group(1)
    statuses = counts(models.TestimonialRequest.status)
    assert set(statuses) == set(STATUSES) - {"queued"}  # queued lasts only during a send
    assert sum(statuses.values()) >= 200
    assert {"draft", "active", "paused"} <= set(counts(Campaign.status))
    failed = db.session.scalars(
        select(models.TestimonialRequest).where(models.TestimonialRequest.status == "failed")
    ).all()
    assert all(r.last_error for r in failed)
    assert any("fail.test" in r.last_error for r in failed)
    assert (
        db.session.scalar(
            select(func.count(models.SlotSend.id)).where(
                models.SlotSend.channel == "sms", models.SlotSend.status == "failed"
            )
        )
        >= 1
    )
    assert db.session.scalar(select(func.count(Testimonial.id)).where(Testimonial.text.is_not(None))) >= 3
    # Every submitted request has its testimonial: the Testimonials page and the overview agree.
    assert db.session.scalar(select(func.count(Testimonial.id))) == statuses["submitted"]
    assert db.session.scalar(select(func.count(OptOut.id))) >= 2
    assert counts(models.SlotSend.slot).get(1, 0) > 0  # reminders went out
    assert rollup.drift() == []  # the home page's daily counts match the demo's rows exactly

    # A newcomer's first look is a healthy system: recent sends went out on time and the
    # scheduler's heartbeat is recorded, so no SLO is breached and no banner shows.
    assert current_breaches(clock()) == []
    token = csrf_from(client, "/login")
    login = client.post("/login", data={"email": DEMO_ADMIN, "password": password, "csrf_token": token})
    assert login.status_code == 302, "the printed demo login works"
    home = client.get("/").get_data(as_text=True)
    assert "slo-banner" not in home and "alert-danger" not in home

    # A video product's demo has videos: a few short clips made at seed time, playable on the
    # Testimonials screen, some approved and some waiting, every testimonial rated.
    videos = db.session.scalars(select(Testimonial).where(Testimonial.video_key.is_not(None))).all()
    assert len(videos) == 4 and {t.video_status for t in videos} == {"ready"}
    assert sorted(t.status for t in videos) == ["approved", "approved", "pending", "pending"]
    assert db.session.scalar(select(func.count(Testimonial.id)).where(Testimonial.rating.is_(None))) == 0
    page = client.get("/testimonials/?status=approved").get_data(as_text=True)
    assert all(f"/testimonials/{t.id}/video" in page for t in videos if t.status == "approved")
    import io

    import av

    for testimonial in videos:
        with client.get(f"/testimonials/{testimonial.id}/video") as response:  # a file response: closed after
            assert response.status_code == 200 and response.mimetype == "video/mp4"
            data = response.data
        with av.open(io.BytesIO(data)) as container:
            streams = {s.type: s.codec_context.name for s in container.streams}
            assert streams == {"video": "h264", "audio": "aac"}
            assert 3 <= container.duration / 1e6 <= 4.1
            frame = next(container.decode(video=0))
            assert (frame.width, frame.height) == (320, 568)
        with client.get(f"/testimonials/{testimonial.id}/poster") as poster:
            assert poster.status_code == 200 and poster.data[:3] == b"\xff\xd8\xff"

    # The outbox's messages carry the simulated send times: each one is an attempt in its
    # request's timeline at the same moment (not the time the demo was seeded).
    outbox = db.session.scalars(select(OutboxMessage).where(OutboxMessage.request_id.is_not(None))).all()
    assert outbox and all(as_utc(m.created_at) <= clock() for m in outbox)
    attempts = {
        (e.request_id, e.channel, as_utc(e.occurred_at))
        for e in db.session.scalars(
            select(models.TestimonialRequestEvent).where(models.TestimonialRequestEvent.type.in_(("sent", "failed")))
        )
    }
    assert all((m.request_id, m.channel, as_utc(m.created_at)) in attempts for m in outbox)
    assert min(as_utc(m.created_at) for m in outbox) < clock() - timedelta(days=20)


@SEEDED
def test_seed_demo_a_second_time_changes_nothing(app, runner, seeded_demo):
    assert seeded_demo[1].exit_code == 0
    before = db.session.scalar(select(func.count(models.TestimonialRequest.id)))
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "already present" in result.output
    assert db.session.scalar(select(func.count(models.TestimonialRequest.id))) == before


def test_the_demo_login_is_kept_per_database(app, tmp_path):
    here = demo_login_path(app.config["SQLALCHEMY_DATABASE_URI"], app.instance_path)
    other = demo_login_path(f"sqlite:///{tmp_path / 'other.db'}", app.instance_path)
    assert here == str(tmp_path / "test.demo-login.txt") and other == str(tmp_path / "other.demo-login.txt")
    assert demo_login_path("sqlite:///testimonials.db", "/srv/instance") == "/srv/instance/testimonials.demo-login.txt"
    pg_a = demo_login_path("postgresql+psycopg://u:secret@db-a/shop", "/srv/instance")
    pg_b = demo_login_path("postgresql+psycopg://u:secret@db-b/shop", "/srv/instance")
    assert pg_a != pg_b and "secret" not in pg_a and pg_a.startswith("/srv/instance/demo-login-shop-")


def saved_password(path):
    with open(path) as f:
        return f.read().strip().rsplit(" / ", 1)[-1]


def test_seed_demo_admin_always_leaves_a_login_that_works_and_touches_no_other_admin(app, clock, tmp_path):
    merchant = create_admin("merchant@shop.example", "correct horse battery", clock())
    db.session.commit()
    merchant_hash = merchant.password_hash
    path = str(tmp_path / "test.demo-login.txt")
    seed_demo_admin(clock(), path)
    first = saved_password(path)
    demo = db.session.scalar(select(Admin).where(Admin.email == DEMO_ADMIN))
    assert demo.check_password(first)

    seed_demo_admin(clock(), path)  # re-run: the same, working login
    assert saved_password(path) == first

    # Another database's seed wrote this file (the old shared instance/demo-login.txt), or
    # it was deleted: the demo admin gets a new password and the file says it.
    with open(path, "w") as f:
        f.write(f"Dashboard login (demo): {DEMO_ADMIN} / somebody-elses\n")
    seed_demo_admin(clock(), path)
    db.session.refresh(demo)
    assert saved_password(path) != "somebody-elses" and demo.check_password(saved_password(path))
    (tmp_path / "test.demo-login.txt").unlink()
    seed_demo_admin(clock(), path)
    db.session.refresh(demo)
    assert demo.check_password(saved_password(path))

    db.session.refresh(merchant)
    assert merchant.password_hash == merchant_hash  # never any other admin's password
    assert db.session.scalar(select(func.count(Admin.id))) == 2
