"""`flask seed-demo` (make run): a populated dashboard for a newcomer, built by the real code paths."""

from sqlalchemy import func, select

from app.campaigns.models import Campaign
from app.extensions import db
from app.lifecycle import models
from app.lifecycle.states import STATUSES
from app.monitoring import rollup
from app.optouts.models import OptOut


def counts(column):
    return dict(db.session.execute(select(column, func.count()).group_by(column)).all())


def test_seed_demo_on_an_empty_database_shows_every_status(app, runner):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "demo data seeded" in result.output and "demo@shop.example / " in result.output
    statuses = counts(models.TestimonialRequest.status)
    assert set(statuses) == set(STATUSES) - {"queued"}  # queued lasts only during a send
    assert sum(statuses.values()) >= 200
    assert {"draft", "active", "paused"} <= set(counts(Campaign.status))
    failed = db.session.scalars(select(models.TestimonialRequest).where(models.TestimonialRequest.status == "failed")).all()
    assert all(r.last_error for r in failed)
    assert any("fail.test" in r.last_error for r in failed)
    assert db.session.scalar(select(func.count(models.SlotSend.id)).where(models.SlotSend.channel == "sms",
                                                                 models.SlotSend.status == "failed")) >= 1
    assert db.session.scalar(select(func.count(models.Testimonial.id)).where(models.Testimonial.text.is_not(None))) >= 3
    assert db.session.scalar(select(func.count(OptOut.id))) >= 2
    assert counts(models.SlotSend.slot).get(1, 0) > 0  # reminders went out
    assert rollup.drift() == []  # the home page's daily counts match the demo's rows exactly


def test_seed_demo_a_second_time_changes_nothing(app, runner):
    assert runner.invoke(args=["seed-demo"]).exit_code == 0
    before = db.session.scalar(select(func.count(models.TestimonialRequest.id)))
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0 and "already present" in result.output
    assert db.session.scalar(select(func.count(models.TestimonialRequest.id))) == before
