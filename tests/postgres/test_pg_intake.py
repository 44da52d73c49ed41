"""The order webhook's tests on PostgreSQL, where a new delivery is written by one
statement sent with the order's lock (``app.intake.services._write_at_once``): the
requests, the items with their outcomes and reasons, replays, cancellations and races
come out as on SQLite. This folder's conftest gives them a PostgreSQL database."""

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from tests.factories import campaign, item, order_body, post_order
from tests.intake.test_order_webhook import (  # noqa: F401
    test_a_campaign_change_rolled_back_is_not_remembered,
    test_a_campaign_changed_by_another_process_applies_to_the_next_webhook,
    test_a_cancellation_received_before_the_delivery_stops_it,
    test_a_change_between_the_read_and_the_write_is_decided_again_under_the_lock,
    test_a_delivery_that_happened_after_the_cancellation_stands,
    test_accepted_order_answers_202_with_created_ids_and_skips_with_reasons,
    test_an_item_refund_received_before_the_delivery_stops_only_that_item,
    test_cancelled_or_refunded_order_cancels_its_requests_not_yet_submitted,
    test_customer_and_tags_may_be_null_or_left_out,
    test_every_webhook_is_kept_with_its_outcome_per_item,
    test_fulfilled_then_delivered_for_the_same_item_still_makes_one_request,
    test_initial_send_time_is_occurred_at_plus_delay_days_in_utc,
    test_order_item_and_product_ids_may_be_strings_or_integers,
    test_order_with_no_active_campaign_is_accepted_and_every_item_skipped_with_the_reason,
    test_partial_refund_cancels_only_the_refunded_items,
    test_racing_deliveries_of_the_same_order_under_different_event_ids_make_exactly_one_request,
    test_replay_of_a_known_event_id_answers_200_duplicate_and_writes_nothing,
    test_request_token_is_long_random_and_url_safe,
    test_same_order_and_item_under_a_new_event_id_makes_no_second_request,
    test_the_outcome_does_not_depend_on_which_webhook_arrives_first,
    test_two_deliveries_of_the_same_event_racing_make_exactly_one_request,
)

pytestmark = pytest.mark.postgres


def test_a_webhook_holds_one_pooled_connection_even_when_the_campaigns_are_read_again(app_factory, clock):
    """A webhook's reads, the campaigns read again after a change, and its write share one
    connection from the pool. With a pool of one connection, a second checkout would wait
    for the first (here: give up after a second, a 503)."""
    from app.campaign_admin.services import update_campaign
    from app.campaigns.models import Campaign

    app = app_factory(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0, "pool_timeout": 1})
    client = app.test_client()
    with app.app_context():
        mugs_id = campaign(clock, delay_days=0, exclude_products=["p_2"]).id
        db.session.rollback()
        first = post_order(client, order_body("evt_1", order_id="o1", items=[item("a", "p_1"), item("b", "p_2")]))
        assert first.status_code == 202, first.get_json()
        assert [s["reason"] for s in first.get_json()["skipped"]] == ["product excluded by the campaign"]

        update_campaign(db.session.get(Campaign, mugs_id), clock(), exclude_products=[])
        db.session.commit()
        db.session.remove()  # the change is committed: the session gives its connection back
        someone_else = {"email": "grace@example.com", "phone": "+15550000002", "first_name": "Grace"}
        second = post_order(
            client,
            order_body("evt_2", order_id="o2", customer=someone_else, items=[item("a", "p_1"), item("b", "p_2")]),
        )

        assert second.status_code == 202, second.get_json()
        assert len(second.get_json()["created"]) == 2  # the rules were read again, on the webhook's connection
        assert db.engine.pool.checkedout() == 0  # and it went back to the pool


def test_a_webhook_is_taken_whatever_the_campaigns_revisions_add_up_to(client, clock):
    """Each campaign's revision is a random 31-bit number; the intake's snapshot compares
    their sum. With two campaigns the sum passed what an INTEGER holds about half the
    time, and PostgreSQL refused every webhook (a 503) until a campaign changed."""
    campaign(clock, name="First")
    campaign(clock, name="Second", include_products=["p_2"])
    db.session.execute(text("UPDATE campaigns SET revision = 2147483647"))  # the highest a revision can be
    db.session.commit()

    response = post_order(client, order_body("evt_big", items=[item("a", "p_1"), item("b", "p_2")]))

    assert response.status_code == 202, response.get_json()
    assert len(response.get_json()["created"]) == 2


def test_a_delivery_whose_one_statement_fails_writes_nothing_and_is_decided_again(client, clock, monkeypatch):
    """The lock and the delivery's statement run in one implicit transaction: when the
    statement fails (here the first new request draws a token already in use), nothing of
    it stays, and the next pass writes the event with its requests once."""
    import app.intake.services as intake
    from app.intake.models import OrderEvent
    from app.lifecycle.models import TestimonialRequest

    campaign(clock)
    assert post_order(client, order_body("evt_first", order_id="1")).status_code == 202
    taken = db.session.scalar(select(TestimonialRequest.token))
    drawn = []

    def token_in_use_first():
        drawn.append(taken if not drawn else "fresh-" + intake.secrets.token_hex(8))
        return drawn[-1]

    monkeypatch.setattr(intake, "new_token", token_in_use_first)

    other = {"email": "grace@example.com", "first_name": "Grace"}
    response = post_order(client, order_body("evt_second", order_id="2", customer=other))

    assert response.status_code == 202, response.get_json()
    assert len(response.get_json()["created"]) == 1
    assert len(drawn) == 2  # the first pass failed, the second wrote
    db.session.rollback()
    assert db.session.scalar(select(func.count()).where(OrderEvent.event_id == "evt_second")) == 1
    tokens_now = db.session.scalars(select(TestimonialRequest.token).order_by(TestimonialRequest.id)).all()
    assert tokens_now[0] == taken and tokens_now[1].startswith("fresh-")
