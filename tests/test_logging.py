"""Spec §11: each of the 8 steps writes a log line naming the request and campaign ids
(step 6 is the click), so one request can be followed through the logs."""

import re

import pytest

from tests.factories import campaign, item, order_body, post_order, request_row, submit_testimonial, tick


def lines_of_step(caplog, step):
    return [r.getMessage() for r in caplog.records if re.match(rf"step={step}\b", r.getMessage())]


def names(line, request_id, campaign_id):
    return (
        re.search(rf"\brequest=(\S+,)?{request_id}\b", line) is not None
        and re.search(rf"\bcampaign=(\S+,)?{campaign_id}\b", line) is not None
    )


def assert_step_logged(caplog, step, request_id, campaign_id):
    lines = lines_of_step(caplog, step)
    assert any(names(line, request_id, campaign_id) for line in lines), (
        f"no step={step} line names request={request_id} campaign={campaign_id}: {lines}"
    )


def test_each_of_the_eight_steps_logs_the_request_and_campaign(app_caplog, client, clock):
    created = campaign(clock, delay_days=0, reminder_delay_days=4)
    body = order_body(items=[item("li_1", "p_1", quantity=2), item("li_2", "p_1")])

    [request_id] = post_order(client, body).get_json()["created"]
    for step in (1, 2, 3, 4):  # received, eligible, split per product, created
        assert_step_logged(app_caplog, step, request_id, created.id)
    assert "from items li_1, li_2" in lines_of_step(app_caplog, 3)[0]

    tick(clock)  # step 5: sent
    assert_step_logged(app_caplog, 5, request_id, created.id)

    token = request_row(request_id).token
    client.get(f"/r/{token}")  # step 6: clicked
    assert_step_logged(app_caplog, 6, request_id, created.id)

    clock.advance(days=4)
    tick(clock)  # step 7: reminder
    assert_step_logged(app_caplog, 7, request_id, created.id)

    submit_testimonial(client, token)  # step 8: reminders stop
    assert_step_logged(app_caplog, 8, request_id, created.id)
    assert "reminders stopped" in lines_of_step(app_caplog, 8)[-1]


@pytest.mark.parametrize("stop", ["expired", "cancelled", "archived"])
def test_every_stop_is_a_step_8_line_naming_request_and_campaign(app_caplog, client, clock, cli, stop):
    created = campaign(clock, delay_days=0, expire_after_days=2)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    tick(clock)
    app_caplog.clear()
    if stop == "expired":
        clock.advance(days=2)
        tick(clock)
    elif stop == "cancelled":
        post_order(client, order_body("evt_c", event_type="order.cancelled", items=[]))
    else:
        cli("campaigns", "archive", str(created.id))
    assert_step_logged(app_caplog, 8, request_id, created.id)
    assert stop[:6] in " ".join(lines_of_step(app_caplog, 8))


def test_a_cancelling_webhook_names_what_it_stopped_in_its_step_1_line(app_caplog, client, clock):
    created = campaign(clock)
    [request_id] = post_order(client, order_body()).get_json()["created"]
    app_caplog.clear()
    post_order(client, order_body("evt_c", event_type="order.cancelled", items=[]))
    assert_step_logged(app_caplog, 1, request_id, created.id)


def test_a_skipped_item_is_logged_at_step_2_with_its_reason(app_caplog, client, clock):
    created = campaign(clock, exclude_products=["p_1"])
    post_order(client, order_body())
    [line] = lines_of_step(app_caplog, 2)
    assert f"campaign={created.id}" in line and "product excluded by the campaign" in line
