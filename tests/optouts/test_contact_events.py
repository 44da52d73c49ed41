"""Contact events on the suppression list (``app.optouts.services.record_contact_event``):
an opt-in takes a contact off the list, a replayed opt-out changes nothing, SendGrid's
group resubscribe undoes only a group unsubscribe, and an opt-out is honoured even when
its request is unknown. Driven through the providers' webhooks, as they arrive."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.optouts.models import ContactEvent, OptOut
from tests.events_helpers import (
    T0,
    TWILIO_INBOUND_PATH,
    inbound_params,
    post_sendgrid,
    post_twilio,
    sg_event,
    webhook_fixtures,
)
from tests.factories import request_row, row_counts, sent_request

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'

signer, app = webhook_fixtures()


@pytest.fixture
def sms(client, clock):
    """An SMS request whose initial text went out; returns (request id, message SID)."""
    request_id = sent_request(client, clock, channel="sms", reminder_delay_days=2)
    return request_id, request_row(request_id).sms_message_id


def inbound(client, body, **kwargs):
    response = post_twilio(client, TWILIO_INBOUND_PATH, inbound_params(body, **kwargs))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True) == EMPTY_TWIML
    return response


def post(client, signer, *events):
    response = post_sendgrid(client, list(events), signer)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("word", ["START", "unstop", "Yes"])
def test_start_opts_the_number_back_in(client, sms, word):
    inbound(client, "STOP")
    inbound(client, word, sid="SM" + "2" * 32)
    assert db.session.scalar(select(OptOut.id)) is None
    history = db.session.scalars(select(ContactEvent.type).order_by(ContactEvent.id)).all()
    assert history == ["opted_out", "opted_in"]


def test_a_replayed_stop_after_start_does_not_opt_out_again(client, sms):
    inbound(client, "STOP", sid="SM" + "1" * 32)
    inbound(client, "START", sid="SM" + "2" * 32)
    counts = row_counts()
    inbound(client, "STOP", sid="SM" + "1" * 32)  # Twilio retried the first webhook
    assert db.session.scalar(select(OptOut.id)) is None
    assert row_counts() == counts


def test_an_unsubscribe_for_an_unknown_request_is_still_honoured(client, signer):
    answer = post(
        client,
        signer,
        sg_event(999, "unsubscribe", email="someone@example.com"),
        sg_event(None, "spamreport", email="other@example.com"),
    )
    assert answer["stored"] == 2 and answer["rejected"] == []
    assert {o.contact for o in db.session.scalars(select(OptOut))} == {"someone@example.com", "other@example.com"}


def test_group_resubscribe_undoes_only_a_group_unsubscribe(client, signer):
    post(
        client,
        signer,
        sg_event(None, "group_unsubscribe", email="a@example.com", timestamp=T0),
        sg_event(None, "unsubscribe", email="b@example.com", timestamp=T0),
    )
    post(
        client,
        signer,
        sg_event(None, "group_resubscribe", email="a@example.com", timestamp=T0 + 60),
        sg_event(None, "group_resubscribe", email="b@example.com", timestamp=T0 + 60),
    )
    assert [o.contact for o in db.session.scalars(select(OptOut))] == ["b@example.com"]
