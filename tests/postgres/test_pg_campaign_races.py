"""A campaign's status changes and the campaign edit's replanning are conditional UPDATEs:
on PostgreSQL (READ COMMITTED, where two transactions really interleave) a change made by
someone else between our read and our write wins, and the merchant is told, instead of
being overwritten by what we read before it.

Each test runs the merchant's dashboard request, and at the moment of its write (a hook on
its engine) another process's change commits first."""

from datetime import timedelta

import pytest
from sqlalchemy import event

from app.campaign_admin.services import set_status
from app.campaigns.models import ACTIVE, ARCHIVED, PAUSED, Campaign
from app.extensions import db
from app.lifecycle.dispatch import dispatch_due
from tests.conftest import AuthActions, csrf_from
from tests.factories import campaign, order_body, outbox, post_order, request_row

pytestmark = pytest.mark.postgres


def merchant_client(app):
    client = app.test_client()
    auth = AuthActions(client, app)
    auth.create()
    assert auth.login().status_code == 302
    return client


def just_before(engine, statement_start, action):
    """Run ``action`` (another process's change, committed) once, right before this engine's
    first statement that starts with ``statement_start``."""
    done = []

    @event.listens_for(engine, "before_cursor_execute")
    def interleave(conn, cursor, statement, parameters, context, executemany):
        if not done and statement.lstrip().startswith(statement_start):
            done.append(True)
            action()

    return done


def test_a_pause_that_loses_to_an_archive_changes_nothing_and_says_so(app, app_factory, clock):
    created = campaign(clock, name="Mugs")
    client = merchant_client(app)
    other = app_factory()

    def archive_elsewhere():
        with other.app_context():
            set_status(db.session.get(Campaign, created.id), "archive", clock())
            db.session.commit()

    token = csrf_from(client, f"/campaigns/{created.id}")
    raced = just_before(db.engine, "UPDATE campaigns", archive_elsewhere)
    response = client.post(f"/campaigns/{created.id}/pause", data={"csrf_token": token}, follow_redirects=True)

    assert raced and response.status_code == 200
    page = response.get_data(as_text=True)
    assert f"Nothing changed: campaign {created.id} was changed at the same time and is now archived" in page
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).status == ARCHIVED  # not paused over the archive


def test_two_pauses_at_once_one_pauses_the_other_is_told(app, app_factory, clock):
    created = campaign(clock)
    client = merchant_client(app)
    other = app_factory()

    def pause_elsewhere():
        with other.app_context():
            set_status(db.session.get(Campaign, created.id), "pause", clock())
            db.session.commit()

    token = csrf_from(client, f"/campaigns/{created.id}")
    just_before(db.engine, "UPDATE campaigns", pause_elsewhere)
    page = client.post(f"/campaigns/{created.id}/pause", data={"csrf_token": token}, follow_redirects=True)
    assert "was changed at the same time and is now paused; cannot pause it" in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).status == PAUSED
    # And a change that does not race goes through as before.
    token = csrf_from(client, f"/campaigns/{created.id}")
    client.post(f"/campaigns/{created.id}/resume", data={"csrf_token": token})
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).status == ACTIVE


def test_an_edit_leaves_a_request_the_dispatcher_sent_meanwhile_as_the_dispatcher_left_it(app, app_factory, clock):
    from tests.campaigns.test_campaign_screens import campaign_form

    created = campaign(clock, delay_days=0, reminder_delay_days=4, max_reminders=2)
    [request_id] = post_order(app.test_client(), order_body()).get_json()["created"]
    db.session.rollback()
    client = merchant_client(app)
    worker = app_factory()

    def send_elsewhere():
        with worker.app_context():
            assert dispatch_due(clock()).sent == 1

    form = campaign_form(delay_days="5", reminder_delay_days="4", max_reminders="2", include_products="")
    form.update(min_order_total="", sms_send_window="", csrf_token=csrf_from(client, f"/campaigns/{created.id}"))
    raced = just_before(db.engine, "UPDATE testimonial_requests", send_elsewhere)
    response = client.post(f"/campaigns/{created.id}", data=form, follow_redirects=True)

    assert raced and response.status_code == 200
    page = response.get_data(as_text=True)
    assert "1 request was being sent (or answered) while you saved and kept the timing planned before" in page
    req = request_row(request_id)
    # The first message went out; its first reminder is planned from that send (4 days), not
    # moved to the edit's "5 days after delivery" that was computed for a waiting message.
    assert req.status == "sent" and req.next_slot == 1
    assert req.next_send_at - req.sent_at == timedelta(days=4)
    assert [m.slot for m in outbox(request_id)] == [0]
    db.session.expire_all()
    assert db.session.get(Campaign, created.id).delay_days == 5  # the edit itself was saved
