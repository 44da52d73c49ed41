"""The Requests Log (spec §6.3, §9): list, filters, search, pagination, detail, retry /
resend / cancel, bulk retry and the CSV export — through the real webhook, the real
dispatch tick and the outbox provider's test addresses."""

import csv
import io
import re

import pytest

from app.extensions import db
from app.lifecycle import queries
from app.lifecycle.models import SlotSend, TestimonialRequest, TestimonialRequestEvent
from app.outbox.models import OutboxMessage
from tests.conftest import csrf_from
from tests.factories import campaign, item, order_body, submit_testimonial


@pytest.fixture
def app(app_factory):
    # Two attempts per slot: a flaky.test address fails twice (→ failed), then succeeds
    # on the third attempt, which only a person's Retry can start.
    app = app_factory(MAX_SEND_ATTEMPTS=2, RETRY_BASE_SECONDS=60)
    with app.app_context():
        yield app


ORDER_SEQ = iter(range(5000, 100000))


def order(client, *, email=None, phone=None, product="p_1", sku=None, title=None, order_id=None, first_name="Ada"):
    """Post one delivered order with one item; returns the created request's id.

    Each order comes from a new customer unless told (a campaign asks a customer about a
    product once)."""
    seq = next(ORDER_SEQ)
    order_id = order_id or str(seq)
    email = email or f"c{seq}@example.com"
    phone = phone or f"+1555{seq:06d}1"  # never ends 9997-9999 (the outbox's failing numbers)
    customer = {"email": email, "phone": phone, "first_name": first_name, "last_name": "L"}
    extra = {"sku": sku} if sku else {}
    body = order_body(
        f"evt_{order_id}",
        order_id=order_id,
        customer=customer,
        items=[item("li_1", product, title=title or f"Product {product}", **extra)],
    )
    response = client.post("/webhooks/orders", json=body)
    assert response.status_code == 202, response.get_json()
    [request_id] = response.get_json()["created"]
    return request_id


def get(request_id):
    db.session.expire_all()
    return db.session.get(TestimonialRequest, request_id)


def events(request_id):
    db.session.expire_all()
    return [
        e.type
        for e in db.session.query(TestimonialRequestEvent)
        .filter_by(request_id=request_id)
        .order_by(TestimonialRequestEvent.id)
    ]


def outbox(request_id):
    db.session.expire_all()
    return db.session.query(OutboxMessage).filter_by(request_id=request_id).order_by(OutboxMessage.id).all()


def row_ids(html):
    return [int(x) for x in re.findall(r'data-request-id="(\d+)"', html)]


def visible(html):
    """The text a reader sees (tags and their attributes, e.g. tooltips, removed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def page(client, **args):
    response = client.get("/requests/", query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def act(client, request_id, action, confirmed=True):
    token = csrf_from(client, f"/requests/{request_id}")
    data = {"csrf_token": token, **({"confirmed": "yes"} if confirmed else {})}
    return client.post(f"/requests/{request_id}/{action}", data=data)


def fail_permanently(client, cli, **fields):
    request_id = order(client, email=f"x{next(ORDER_SEQ)}@fail.test", **fields)
    cli("dispatch")
    assert get(request_id).status == "failed"
    return request_id


# -- access ---------------------------------------------------------------------------

URLS = [
    ("get", "/requests/"),
    ("get", "/requests/?status=failed&q=ada"),
    ("get", "/requests/1"),
    ("get", "/requests/export.csv"),
    ("post", "/requests/1/retry"),
    ("post", "/requests/1/resend"),
    ("post", "/requests/1/cancel"),
    ("post", "/requests/retry-failed"),
]


@pytest.mark.parametrize(("method", "url"), URLS)
def test_anonymous_visitor_is_sent_to_login(client, clock, method, url):
    campaign(clock, delay_days=0)
    order(client)
    data = {"csrf_token": csrf_from(client, "/login"), "confirmed": "yes"} if method == "post" else None
    response = getattr(client, method)(url, data=data)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_action_without_csrf_token_is_rejected_and_changes_nothing(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    before = events(request_id)
    response = logged_in.post(f"/requests/{request_id}/retry", data={"confirmed": "yes"})
    assert response.status_code == 400
    assert get(request_id).status == "failed"
    assert events(request_id) == before


def test_nav_shows_the_failed_count_and_links_the_log(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    fail_permanently(logged_in, cli)
    html = page(logged_in)
    assert 'href="/requests/"' in html
    assert re.search(r'badge bg-danger" title="failed requests waiting for a Retry">1<', html)


# -- list, filters, search --------------------------------------------------------------


def test_empty_log_says_so(logged_in):
    assert "No testimonial requests yet" in page(logged_in)


def test_list_shows_columns_masks_phone_and_marks_failed_rows_with_reason(logged_in, clock, cli):
    campaign(clock, delay_days=0, channel="both")
    ok = order(logged_in, email="ada@example.com", phone="+15551234567", sku="MUG-1", title="Blue mug")
    failed = order(logged_in, email="x@fail.test", phone="+15550009999")
    cli("dispatch")
    html = page(logged_in)
    assert row_ids(html) == [failed, ok]  # newest first
    assert "+1•••••4567" in html and "+15551234567" not in html
    # Emails are masked like phones in the list (the request's page shows them in full).
    assert "a•••@example.com" in html and "ada@example.com" not in html
    assert "ada@example.com" in logged_in.get(f"/requests/{ok}").get_data(as_text=True)
    assert "Blue mug" in html and "MUG-1" in html
    failed_row = re.search(rf'<tr class="row-failed" data-request-id="{failed}">.*?</tr>', html, re.S).group(0)
    assert 'data-status="failed"' in failed_row
    assert 'class="error-reason"' in failed_row and "rejected (simulated permanent failure)" in failed_row
    ok_row = re.search(rf'<tr class="[^"]*" data-request-id="{ok}">.*?</tr>', html, re.S).group(0)
    assert "row-failed" not in ok_row and 'data-status="sent"' in ok_row
    assert "reminder 1" in ok_row  # next send column names the slot


def test_filters_each_narrow_the_list(logged_in, clock, cli):
    email_campaign = campaign(clock, name="Mugs", delay_days=0, include_products=["p_1", "p_2"])
    sms_campaign = campaign(clock, name="Texts", delay_days=0, channel="sms", include_products=["p_9"])
    early = order(logged_in, product="p_1", email="ada@example.com")  # sent on day 1
    cli("dispatch")
    clock.advance(days=2)
    failed = order(logged_in, email="x@fail.test", product="p_2")  # a new customer
    texted = order(logged_in, product="p_9", email="ada@example.com", phone="+15557654321")
    cli("dispatch")
    clock.advance(days=2)
    scheduled = order(logged_in, product="p_1", email="late@example.com")  # not sent yet
    everything = {early, failed, texted, scheduled}
    assert set(row_ids(page(logged_in))) == everything

    assert row_ids(page(logged_in, status="failed")) == [failed]
    assert row_ids(page(logged_in, status="scheduled")) == [scheduled]
    assert set(row_ids(page(logged_in, campaign_id=email_campaign.id))) == {early, failed, scheduled}
    assert row_ids(page(logged_in, campaign_id=sms_campaign.id)) == [texted]
    assert row_ids(page(logged_in, channel="sms")) == [texted]
    assert row_ids(page(logged_in, has_error="y")) == [failed]
    assert row_ids(page(logged_in, created_from="2026-11-24")) == [scheduled]
    assert set(row_ids(page(logged_in, created_from="2026-11-22", created_to="2026-11-22"))) == {failed, texted}
    assert row_ids(page(logged_in, created_to="2026-11-20")) == [early]
    assert row_ids(page(logged_in, sent_from="2026-11-20", sent_to="2026-11-21")) == [early]
    assert row_ids(page(logged_in, sent_from="2026-11-22")) == [texted]  # a failed request was never sent
    assert row_ids(page(logged_in, status="failed", campaign_id=sms_campaign.id)) == []
    assert "No request matches this filter" in page(logged_in, status="expired")


def test_search_by_order_email_phone_and_product(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    ada = order(
        logged_in,
        order_id="A-1001",
        email="ada@example.com",
        phone="+15551234567",
        product="p_1",
        sku="MUG-1",
        title="Blue mug",
    )
    bob = order(
        logged_in,
        order_id="B-2002",
        email="bob@example.org",
        phone="+447700900123",
        product="p_2",
        sku="TEE-9",
        title="Cotton tee",
    )
    assert row_ids(page(logged_in, q="A-1001")) == [ada]
    assert row_ids(page(logged_in, q="#B-2002")) == [bob]
    assert row_ids(page(logged_in, q="bob@example.org")) == [bob]
    assert row_ids(page(logged_in, q="ADA@Example.com")) == [ada]  # e-mails are case-insensitive
    assert row_ids(page(logged_in, q="bob@")) == [bob]
    assert row_ids(page(logged_in, q="+15551234567")) == [ada]
    assert row_ids(page(logged_in, q="7700 900123")) == [bob]  # national number, spaces
    assert row_ids(page(logged_in, q="p_2")) == [bob]
    assert row_ids(page(logged_in, q="MUG-1")) == [ada]
    assert row_ids(page(logged_in, q="cotton")) == [bob]  # title, any case, any part
    assert row_ids(page(logged_in, q="100%_")) == []  # LIKE wildcards are literal
    assert "No request matches this filter" in page(logged_in, q="nobody@nowhere.example")


@pytest.mark.parametrize(
    "args",
    [
        {"status": "lost"},
        {"campaign_id": "999"},
        {"created_from": "yesterday"},
        {"sent_from": "2026-11-22", "sent_to": "2026-11-20"},
        {"q": "x" * 300},
    ],
)
def test_invalid_filter_is_a_400_with_the_reason(logged_in, args):
    response = logged_in.get("/requests/", query_string=args)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "invalid-feedback" in html and "fix them to see the requests" in html


def test_pagination_fifty_per_page_newest_first(logged_in, clock):
    campaign(clock, delay_days=3)
    ids = [order(logged_in) for _ in range(51)]
    first = page(logged_in)
    assert row_ids(first) == ids[::-1][:50]
    assert "Showing 1–50 of 51 requests" in first and "Page 1 of 2" in first
    assert 'rel="next" href="/requests/?page=2"' in first
    second = page(logged_in, page=2)
    assert row_ids(second) == [ids[0]]
    assert "Showing 51–51 of 51" in second
    # the filter travels with the page links
    filtered = page(logged_in, status="scheduled")
    assert 'href="/requests/?page=2&amp;status=scheduled"' in filtered
    assert row_ids(page(logged_in, page=9)) == []


# -- detail -----------------------------------------------------------------------------


def test_detail_page_is_the_runbook_on_one_page(logged_in, clock, cli):
    campaign(clock, name="Mugs", delay_days=0, reminder_delay_days=4, max_reminders=2)
    request_id = order(logged_in, email="ada@example.com", phone="+15551234567")
    cli("dispatch")
    req = get(request_id)
    html = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert f"Request #{request_id}" in html and 'data-status="sent"' in html
    assert f"/r/{req.token}" in html  # the customer's link
    assert "+15551234567" in html  # the full number on the detail page
    # event timeline with provider ids
    assert 'data-event="queued"' in html and 'data-event="sent"' in html
    assert req.email_message_id in html
    # slot sends
    assert "slot-sends-table" in html
    # campaign status and reminder settings
    assert "Mugs" in html and 'campaign-status">active' in html
    assert "Maximum reminders" in html and "4 days" in html
    # the message as rendered, sandboxed
    [message] = outbox(request_id)
    assert re.search(r"<iframe sandbox [^>]*srcdoc=", html)
    assert message.subject in html
    # only the actions that fit a sent request
    assert "/resend" in html and "/cancel" in html and f"/requests/{request_id}/retry" not in html


def test_detail_of_a_failed_request_shows_error_code_and_reason(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    html = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "This request failed" in html and "outbox-rejected" in html
    assert re.search(r"x\d+@fail.test rejected \(simulated permanent failure\)", html)
    assert f"/requests/{request_id}/retry" in html


def test_every_failing_channel_shows_in_the_row_the_detail_the_error_filter_and_the_csv(logged_in, clock, cli):
    campaign(clock, delay_days=0, channel="both")
    fine = order(logged_in, email="ok@example.com")
    request_id = order(logged_in, email="x@fail.test", phone="+15550009998")  # e-mail refused, SMS flaky
    cli("dispatch")
    clock.advance(minutes=1)
    cli("dispatch")  # the SMS fails its second (last) attempt
    email_refused = "email: permanent [outbox-rejected]: recipient x@fail.test rejected (simulated permanent failure)"
    sms_down = "sms: retryable [outbox-unavailable]: provider unavailable (simulated transient failure)"

    def row_html():
        html = page(logged_in)
        return re.search(rf'<tr class="[^"]*" data-request-id="{request_id}">.*?</tr>', html, re.S).group(0)

    def exported_error():
        rows = csv.DictReader(io.StringIO(logged_in.get("/requests/export.csv").get_data(as_text=True)))
        return next(r["last_error"] for r in rows if int(r["request_id"]) == request_id)

    assert get(request_id).status == "failed"
    row = row_html()
    # plain words per channel, with what to do; the provider's text in the tooltip
    assert "Email: the address was rejected permanently — correct the email address, then Retry" in visible(row)
    assert "SMS: the provider was unavailable; gave up after 2 attempts — Retry to send again" in visible(row)
    assert "retryable" not in visible(row)  # the row already gave up
    assert f'title="Provider said: {email_refused.removeprefix("email: ")}"' in row
    assert f'title="Provider said: {sms_down.removeprefix("sms: ")}"' in row
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert re.search(r'<li data-channel="email"[^>]*>.*?recipient x@fail.test rejected', detail, re.S)
    assert re.search(r'<li data-channel="sms"[^>]*>.*?provider unavailable', detail, re.S)
    assert row_ids(page(logged_in, has_error="y")) == [request_id]
    assert exported_error() == f"{email_refused} · {sms_down}"

    act(logged_in, request_id, "retry")
    assert get(request_id).last_error is None  # a person retried: no reason stands until the next try
    assert row_ids(page(logged_in, has_error="y")) == []

    cli("dispatch")  # the SMS goes out at last; the e-mail is refused again

    assert get(request_id).status == "sent"
    row = row_html()
    assert email_refused.removeprefix("email: ") in row and "SMS:" not in visible(row)
    assert "correct the email address so later reminders reach the customer" in visible(row)
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "Not every message got through" in detail and 'data-channel="email"' in detail
    assert 'data-channel="sms"' not in detail
    assert row_ids(page(logged_in, has_error="y")) == [request_id]
    assert exported_error() == email_refused
    assert get(fine).last_error is None


def test_unknown_request_is_a_404(logged_in):
    assert logged_in.get("/requests/424242").status_code == 404
    token = csrf_from(logged_in, "/requests/")
    assert logged_in.post("/requests/424242/retry", data={"csrf_token": token, "confirmed": "yes"}).status_code == 404


def test_unknown_action_is_a_404(logged_in, clock):
    campaign(clock, delay_days=0)
    request_id = order(logged_in)
    token = csrf_from(logged_in, f"/requests/{request_id}")
    assert logged_in.post(f"/requests/{request_id}/explode", data={"csrf_token": token}).status_code == 404


# -- actions --------------------------------------------------------------------------


def test_without_javascript_an_action_first_asks_for_confirmation(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    response = act(logged_in, request_id, "retry", confirmed=False)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "confirm-question" in html and 'name="confirmed" value="yes"' in html
    assert get(request_id).status == "failed"  # nothing happened yet


def test_retry_schedules_the_failed_slot_and_the_next_tick_sends_it(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = order(logged_in, email="ada@flaky.test")
    cli("dispatch")
    clock.advance(minutes=2)
    cli("dispatch")
    assert get(request_id).status == "failed" and len(outbox(request_id)) == 2

    response = act(logged_in, request_id, "retry")
    assert response.status_code == 302
    page_after = logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert "retry scheduled" in page_after
    req = get(request_id)
    assert req.status == "scheduled" and req.next_send_at == clock() and req.attempts == 0
    assert events(request_id)[-1] == "retried"
    assert "retry requested by merchant@shop.example" in page_after

    report = cli("dispatch")
    assert report["sent"] == 1
    assert get(request_id).status == "sent"
    assert [m.outcome for m in outbox(request_id)] == ["rejected", "rejected", "accepted"]


def test_retry_from_a_failed_row_in_the_list_returns_to_the_same_page(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    html = page(logged_in, status="failed")
    row = re.search(rf'data-request-id="{request_id}">.*?</tr>', html, re.S).group(0)
    assert f'action="/requests/{request_id}/retry"' in row and 'name="next" value="/requests/?status=failed"' in row
    token = csrf_from(logged_in, "/requests/")
    response = logged_in.post(
        f"/requests/{request_id}/retry",
        data={"csrf_token": token, "confirmed": "yes", "next": "/requests/?status=failed"},
    )
    assert response.headers["Location"] == "/requests/?status=failed"
    assert get(request_id).status == "scheduled"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_an_action_never_redirects_to_another_site(logged_in, clock, cli, target):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    token = csrf_from(logged_in, "/requests/")
    response = logged_in.post(
        f"/requests/{request_id}/retry", data={"csrf_token": token, "confirmed": "yes", "next": target}
    )
    assert response.headers["Location"] == f"/requests/{request_id}"


def test_retry_of_a_sent_request_is_refused_and_changes_nothing(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = order(logged_in)
    cli("dispatch")
    before = (get(request_id).status, get(request_id).next_send_at, events(request_id))
    response = act(logged_in, request_id, "retry")
    assert response.status_code == 409
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert "only failed requests can be retried" in response.get_data(as_text=True)
    assert (get(request_id).status, get(request_id).next_send_at, events(request_id)) == before


def test_resend_sends_the_last_slot_again_and_keeps_the_reminder_plan(logged_in, clock, cli):
    campaign(clock, delay_days=0, reminder_delay_days=4, max_reminders=2)
    request_id = order(logged_in)
    cli("dispatch")
    first = get(request_id)
    planned = first.next_send_at  # reminder 1
    assert first.next_slot == 1 and planned == first.sent_at.replace() + __import__("datetime").timedelta(days=4)

    clock.advance(hours=3)
    response = act(logged_in, request_id, "resend")
    assert response.status_code == 302
    req = get(request_id)
    assert req.resend_count == 1 and req.next_slot == 0 and req.next_send_at == clock()
    assert events(request_id)[-1] == "resend_requested"

    report = cli("dispatch")
    assert report["sent"] == 1
    messages = outbox(request_id)
    assert [(m.slot, m.outcome) for m in messages] == [(0, "accepted"), (0, "accepted")]
    req = get(request_id)
    assert req.status == "sent" and req.next_slot == 1 and req.next_send_at == planned  # plan restored
    assert req.sent_at == first.sent_at and req.expires_at == first.expires_at
    sends = db.session.query(SlotSend).filter_by(request_id=request_id).order_by(SlotSend.id).all()
    assert [(s.slot, s.resend, s.status) for s in sends] == [(0, 0, "sent"), (0, 1, "sent")]
    assert cli("dispatch")["sent"] == 0  # replaying the tick does not send it a third time


def test_resend_of_the_last_allowed_reminder(logged_in, clock, cli):
    campaign(clock, delay_days=0, reminder_delay_days=1, max_reminders=1)
    request_id = order(logged_in)
    cli("dispatch")
    clock.advance(days=1)
    cli("dispatch")
    req = get(request_id)
    assert req.reminder_count == 1 and req.next_send_at is None

    assert act(logged_in, request_id, "resend").status_code == 302
    assert cli("dispatch")["sent"] == 1
    assert [m.slot for m in outbox(request_id)] == [0, 1, 1]
    req = get(request_id)
    assert req.reminder_count == 1 and req.next_send_at is None and req.status == "sent"


@pytest.mark.parametrize("final", ["cancel", "submit"])
def test_resend_is_refused_once_a_request_is_finished(logged_in, clock, cli, final):
    campaign(clock, delay_days=0)
    request_id = order(logged_in)
    cli("dispatch")
    if final == "cancel":
        cli("requests", "cancel", str(request_id))
    else:
        from app.lifecycle.services import record_submission

        record_submission(get(request_id), clock())
        db.session.commit()
    before = events(request_id)
    response = act(logged_in, request_id, "resend")
    assert response.status_code == 409
    assert "only sent, clicked or failed requests can be resent" in response.get_data(as_text=True)
    assert events(request_id) == before and get(request_id).resend_count == 0


def test_resend_of_a_never_sent_request_is_refused(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    response = act(logged_in, request_id, "resend")
    assert response.status_code == 409 and "use Retry" in response.get_data(as_text=True)
    assert get(request_id).status == "failed"


def test_cancel_stops_the_request_and_writes_an_event(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = order(logged_in)
    cli("dispatch")
    response = act(logged_in, request_id, "cancel")
    assert response.status_code == 302
    assert "cancelled" in logged_in.get(response.headers["Location"]).get_data(as_text=True)
    req = get(request_id)
    assert req.status == "cancelled" and req.next_send_at is None
    assert events(request_id)[-1] == "cancelled"
    clock.advance(days=30)
    cli("dispatch")
    assert len(outbox(request_id)) == 1
    again = act(logged_in, request_id, "cancel")
    assert again.status_code == 409 and "cannot be cancelled" in again.get_data(as_text=True)


# -- bulk retry -----------------------------------------------------------------------


def test_bulk_retry_retries_exactly_the_failed_rows_in_the_filter(logged_in, clock, cli, form_post):
    mugs = campaign(clock, name="Mugs", delay_days=0, include_products=["p_1"])
    campaign(clock, name="Tees", delay_days=0, include_products=["p_2"])
    in_filter = [order(logged_in, email=f"m{i}@fail.test", product="p_1") for i in range(3)]
    other_campaign = order(logged_in, email="t@fail.test", product="p_2")
    sent = order(logged_in, product="p_1")
    cli("dispatch")
    filter_args = {"campaign_id": str(mugs.id)}

    html = page(logged_in, **filter_args)
    assert "Retry all failed in this filter (3)" in html
    confirm = form_post("/requests/", "/requests/retry-failed", filter_args)
    assert confirm.status_code == 200 and "Retry all 3 failed requests in this filter?" in confirm.get_data(
        as_text=True
    )
    assert all(get(i).status == "failed" for i in in_filter)

    response = form_post("/requests/", "/requests/retry-failed", {**filter_args, "confirmed": "yes"})
    assert response.status_code == 302 and response.headers["Location"] == f"/requests/?campaign_id={mugs.id}"
    assert "Retry scheduled for 3 failed requests" in logged_in.get(response.headers["Location"]).get_data(as_text=True)
    assert [get(i).status for i in in_filter] == ["scheduled"] * 3
    assert all(events(i)[-1] == "retried" for i in in_filter)
    assert get(other_campaign).status == "failed" and events(other_campaign)[-1] == "failed"
    assert get(sent).status == "sent"


def test_bulk_retry_with_a_non_failed_status_filter_retries_nothing(logged_in, clock, cli, form_post):
    campaign(clock, delay_days=0)
    failed = fail_permanently(logged_in, cli)
    response = form_post("/requests/", "/requests/retry-failed", {"status": "sent", "confirmed": "yes"})
    assert response.status_code == 302
    assert get(failed).status == "failed"


# -- CSV export -----------------------------------------------------------------------


def test_csv_export_matches_the_filter_with_full_contact_details(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    ok = order(logged_in, email="ada@example.com", phone="+15551234567", title='=HYPERLINK("x")')
    failed = order(logged_in, email="x@fail.test", phone="+15550009999")
    cli("dispatch")

    response = logged_in.get("/requests/export.csv", query_string={"status": "sent"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [int(r["request_id"]) for r in rows] == [ok]
    [row] = rows
    assert row["customer_phone"] == "+15551234567" and row["customer_email"] == "ada@example.com"
    assert row["status"] == "sent" and row["reminders_sent"] == "0" and row["next_slot"] == "1"
    assert row["product_title"].startswith("'=")  # a formula stays text in a spreadsheet

    everything = logged_in.get("/requests/export.csv").get_data(as_text=True)
    reader = csv.reader(io.StringIO(everything))
    header = next(reader)
    assert header[:4] == ["request_id", "campaign_id", "campaign", "order_id"] and "last_error" in header
    assert [int(r[0]) for r in reader] == [failed, ok]
    errors = list(csv.DictReader(io.StringIO(logged_in.get("/requests/export.csv?has_error=y").get_data(as_text=True))))
    assert [int(r["request_id"]) for r in errors] == [failed] and "rejected" in errors[0]["last_error"]


def test_csv_export_with_an_invalid_filter_is_a_400(logged_in):
    assert logged_in.get("/requests/export.csv?created_from=someday").status_code == 400


def test_csv_export_keeps_outside_text_from_running_as_a_spreadsheet_formula(logged_in, clock, cli):
    campaign(clock, delay_days=0, name="=Mugs")
    request_id = order(
        logged_in,
        order_id="-2+3",
        email="ada@example.com",
        phone="+15551234567",
        first_name="@SUM(A1)",
        sku="+cmd|' /C calc'!A0",
        title='=HYPERLINK("http://evil.example","x")',
    )
    cli("dispatch")

    response = logged_in.get("/requests/export.csv")

    # a dated file name, from the app's clock
    assert response.headers["Content-Disposition"] == 'attachment; filename="requests-2026-11-20-1200.csv"'
    [row] = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert int(row["request_id"]) == request_id
    assert (row["campaign"], row["order_id"], row["customer_first_name"], row["sku"], row["product_title"]) == (
        "'=Mugs",
        "'-2+3",
        "'@SUM(A1)",
        "'+cmd|' /C calc'!A0",
        '\'=HYPERLINK("http://evil.example","x")',
    )
    assert row["customer_phone"] == "+15551234567"  # a phone number is digits: nothing to run
    assert row["sent_at"] == row["last_event_at"] == "2026-11-20T12:00:00Z"
    assert row["created_at"] == "2026-11-20T12:00:00Z" and row["clicked_at"] == "" and row["last_error"] == ""


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"status": "failed"},
        {"has_error": "y"},
        {"channel": "email"},
        {"q": "fail.test"},
        {"q": "mug"},
        {"created_from": "2026-11-21"},
        {"sent_to": "2026-11-20"},
        {"status": "sent", "q": "+15550001111"},
    ],
)
def test_csv_export_holds_exactly_the_rows_the_page_shows_for_the_same_filter(logged_in, clock, cli, args):
    campaign(clock, delay_days=0, channel="both")
    order(logged_in, email="a@example.com", phone="+15550001111", title="Blue mug")
    order(logged_in, email="b@fail.test", phone="+15550002222")
    cli("dispatch")
    clock.advance(days=1)
    order(logged_in, email="c@example.com", phone="+15550003333", title="Mug stand")
    order(logged_in, email="d@example.com", phone="+15550009999")  # the SMS is refused, the e-mail goes
    cli("dispatch")

    response = logged_in.get("/requests/export.csv", query_string=args)

    assert response.status_code == 200
    exported = [int(r["request_id"]) for r in csv.DictReader(io.StringIO(response.get_data(as_text=True)))]
    assert exported == row_ids(page(logged_in, **args))


def test_csv_export_streams_chunk_by_chunk_and_leaves_the_database_free_between_chunks(
    app, logged_in, clock, monkeypatch
):
    import sqlite3

    from sqlalchemy import event

    campaign(clock, delay_days=3)
    ids = [order(logged_in) for _ in range(5)]
    monkeypatch.setattr(queries, "EXPORT_CHUNK", 2)
    statements = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    other_process = sqlite3.connect(app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"), timeout=0)

    response = logged_in.get("/requests/export.csv", buffered=False)
    pieces = iter(response.response)
    first = next(pieces)

    # the first chunk is on its way before the rest is read, and meanwhile another process
    # (the dispatcher, a webhook) can write: no transaction stays open across the stream
    assert first.decode().count("\n") == 3  # the header and two rows
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("ROLLBACK")
    text = (first + b"".join(pieces)).decode()
    response.close()
    other_process.close()
    assert [int(r["request_id"]) for r in csv.DictReader(io.StringIO(text))] == ids[::-1]
    # three keyset reads of plain columns (2 + 2 + 1 rows), nothing per row
    reads = [s for s in statements if "FROM testimonial_requests" in s]
    assert len(reads) == 3 and all("testimonial_requests.id < ?" in s for s in reads[1:])
    assert not any("FROM campaigns" in s and "WHERE campaigns.id" in s for s in statements)


def test_csv_export_of_an_empty_filter_is_the_header_alone(logged_in):
    response = logged_in.get("/requests/export.csv", query_string={"status": "expired"})
    assert response.status_code == 200
    assert list(csv.reader(io.StringIO(response.get_data(as_text=True)))) == [list(queries.EXPORT_HEADER)]


# -- read by a merchant: columns, reasons, what happens next -------------------------------


def row_of(html, request_id):
    return re.search(rf'<tr class="[^"]*" data-request-id="{request_id}">.*?</tr>', html, re.S).group(0)


def test_the_table_has_few_wide_columns_and_every_named_field_is_in_the_row(logged_in, clock, cli):
    """At 1280 px eleven columns pushed "Last error" off-screen: related fields share a cell."""
    campaign(clock, name="Mugs", delay_days=0, channel="both", reminder_delay_days=4, max_reminders=2)
    request_id = order(
        logged_in, order_id="A-77", email="ada@example.com", phone="+15551234567", sku="MUG-1", title="Blue mug"
    )
    cli("dispatch")
    html = page(logged_in)
    headers = re.findall(r"<th[^>]*>(.*?)</th>", html)
    assert headers == [
        "Request",
        "Order · product",
        "Customer · channel",
        "Status · next send",
        "Sent at · reminders",
        "Last event",
        "Reason · last error",
    ]
    text = visible(row_of(html, request_id))
    for shown in (
        f"#{request_id}",
        "Mugs",
        "A-77",
        "Blue mug",
        "MUG-1",
        "a•••@example.com",
        "+1•••••4567",
        "by email + SMS",
        "sent",
        "reminder 1 on 2026-11-24 12:00",
        "2026-11-20 12:00",
        "no reminders yet",
    ):
        assert shown in text, (shown, text)


def test_each_status_says_what_happens_next(logged_in, clock, cli):
    campaign(clock, delay_days=0, reminder_delay_days=4, max_reminders=1)
    sent = order(logged_in)
    failed = fail_permanently(logged_in, cli)
    clock.advance(days=1)
    scheduled = order(logged_in)  # due now, not dispatched yet
    assert get(scheduled).status == "scheduled"
    html = page(logged_in)
    assert "reminder 1 on 2026-11-24 12:00" in visible(row_of(html, sent))
    assert "needs your action" in visible(row_of(html, failed))
    assert "sends 2026-11-21 12:00" in visible(row_of(html, scheduled))
    clock.advance(days=4)
    cli("dispatch")
    assert "no more reminders; link open until" in visible(row_of(page(logged_in), sent))


def test_a_cancelled_row_shows_why_in_the_list(logged_in, clock, cli, form_post):
    campaign(clock, delay_days=2)
    by_hand = order(logged_in)
    opted = order(logged_in, email="quiet@example.com")
    act(logged_in, by_hand, "cancel")
    response = form_post("/opt-outs/", data={"channel": "email", "contact": "quiet@example.com"})
    assert response.status_code in (200, 302, 303)
    assert get(opted).status == "cancelled"
    html = page(logged_in)
    assert re.search(r"Cancelled by \S+@\S+ from the Requests Log\.", visible(row_of(html, by_hand)))
    assert "Cancelled: the customer opted out of email (added to the opt-out list by you)." in visible(
        row_of(html, opted)
    )
    detail = logged_in.get(f"/requests/{opted}").get_data(as_text=True)
    assert "Cancelled: the customer opted out of email" in detail


def test_the_reason_in_the_list_masks_phone_numbers_and_keeps_emails(logged_in, clock, cli):
    campaign(clock, delay_days=0, channel="sms")
    request_id = order(logged_in, email="ada@example.com", phone="+15550009999")  # the outbox refuses it
    cli("dispatch")
    assert get(request_id).status == "failed" and "+15550009999" in get(request_id).last_error
    row = row_of(page(logged_in), request_id)
    assert "+15550009999" not in row  # not in the text, not in the tooltip
    assert "+1•••••9999" in row
    assert "SMS: the number was rejected permanently — correct the phone number, then Retry" in visible(row)
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "recipient +15550009999 rejected" in detail  # the detail page shows it in full


def test_the_detail_page_speaks_the_merchants_words(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    html = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert "Attempts (current slot)" not in html and "Send attempts per slot and channel" not in html
    assert "Tries so far" in html and "First message" in html and "Messages handed to the provider" in html
    assert "Email: the address was rejected permanently — correct the email address, then Retry" in html
    assert "outbox-rejected" in html  # the provider's code stays on the page


def test_filter_choices_say_what_each_status_means(logged_in):
    html = page(logged_in, status="failed")
    assert '<option selected value="failed">failed — needs your action</option>' in html
    assert '<option value="both">Email and SMS</option>' in html
    assert 'placeholder="Order id, email, phone or product"' in html


def test_confirmations_say_when_it_goes_out_and_match_the_dialog(app, logged_in, clock, cli):
    """The browser's confirm() and the page without JavaScript ask the same question, in
    plain words ('within about a minute', not 'the next dispatch tick')."""
    campaign(clock, delay_days=0)
    failed_id = fail_permanently(logged_in, cli)
    sent_id = order(logged_in)
    cli("dispatch")
    assert get(sent_id).status == "sent"
    for request_id, action in ((failed_id, "retry"), (sent_id, "resend"), (sent_id, "cancel")):
        detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
        confirm_page = act(logged_in, request_id, action, confirmed=False).get_data(as_text=True)
        question = re.search(r'<p class="confirm-question">(.*?)</p>', confirm_page, re.S).group(1)
        dialog = re.search(rf'action="/requests/{request_id}/{action}"[^>]*data-confirm="([^"]*)"', detail).group(1)
        assert dialog == question
        assert "tick" not in question
    # the tests run without the built-in scheduler; with it, the wait is its interval
    assert "the next time sending runs" in act(logged_in, sent_id, "resend", confirmed=False).get_data(as_text=True)
    app.config.update(SCHEDULER_ENABLED=True, SCHEDULER_INTERVAL_SECONDS=60)
    assert "goes out again within about a minute." in act(logged_in, sent_id, "resend", confirmed=False).get_data(
        as_text=True
    )
    app.config.update(SCHEDULER_INTERVAL_SECONDS=300)
    assert "within about 5 minutes" in act(logged_in, sent_id, "resend", confirmed=False).get_data(as_text=True)
    assert "tick" not in page(logged_in, status="failed")  # the bulk retry button's question


def test_retry_confirmation_offers_to_correct_a_refused_address_first(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    html = act(logged_in, request_id, "retry", confirmed=False).get_data(as_text=True)
    assert f'href="/requests/{request_id}/contact"' in html and "Correct contact details first" in html
    flaky = order(logged_in, email="y@down.test")  # refused for now, not for good: nothing to correct
    for day in (1, 2):  # two attempts per slot in this module, the second after its back-off
        cli("dispatch", "--now", f"2099-01-0{day}T00:00:00Z")
    assert get(flaky).status == "failed"
    assert "Correct contact details first" not in act(logged_in, flaky, "retry", confirmed=False).get_data(as_text=True)


def test_bulk_retry_warns_about_requests_refused_for_good(logged_in, clock, cli, form_post):
    campaign(clock, delay_days=0)
    fail_permanently(logged_in, cli)
    corrected = fail_permanently(logged_in, cli)
    order(logged_in, email="w@down.test")  # refused for now, not for good
    for day in (1, 2):
        cli("dispatch", "--now", f"2099-01-0{day}T00:00:00Z")
    token = csrf_from(logged_in, f"/requests/{corrected}/contact")
    logged_in.post(f"/requests/{corrected}/contact", data={"csrf_token": token, "email": "fixed@example.com"})
    warning = (
        "Warning: 1 of them was refused for good (a wrong address or number) and will be refused again "
        "unless you correct the contact details first."
    )
    assert "Retry all 3 failed requests in this filter?" in page(logged_in) and warning in page(logged_in)
    confirm = form_post("/requests/", "/requests/retry-failed", data={"status": "failed"})
    assert warning in confirm.get_data(as_text=True)


def test_detail_says_what_happens_next(logged_in, clock, cli):
    campaign(clock, delay_days=0, channel="both")
    failed_id = fail_permanently(logged_in, cli, phone="+15550009999")
    sent_id = order(logged_in)
    cli("dispatch")
    assert "Next: needs your action" in visible(logged_in.get(f"/requests/{failed_id}").get_data(as_text=True))
    detail = visible(logged_in.get(f"/requests/{sent_id}").get_data(as_text=True))
    assert re.search(r"Next: reminder 1 on \d{4}-\d\d-\d\d \d\d:\d\d", detail)
    assert "Channel Email and SMS" in detail and "Trigger Order delivered" in detail and "E-mail" not in detail
    assert "Order delivered at" in detail and "Order event at" not in detail
    html = logged_in.get(f"/requests/{sent_id}").get_data(as_text=True)  # the timeline's events in words
    assert 'title="event type: queued">Sending started<' in html
    assert 'title="event type: sent">Sent (provider accepted)<' in html


def test_an_old_error_on_a_finished_request_does_not_suggest_retry(logged_in, clock, cli):
    campaign(clock, delay_days=0, channel="both")
    request_id = order(logged_in, email="z@fail.test")  # the email is refused, the SMS goes out
    cli("dispatch")
    req = get(request_id)
    assert req.status == "sent" and req.last_error
    assert "someone presses Retry" in logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    submit_testimonial(logged_in, req.token)
    assert get(request_id).status == "submitted"
    detail = visible(logged_in.get(f"/requests/{request_id}").get_data(as_text=True))
    assert "someone presses Retry" not in detail
    assert "This request is submitted, so nothing more is sent for it and there is nothing to retry" in detail


# -- correcting contact details ------------------------------------------------------------


def contact_form(client, request_id, **data):
    token = csrf_from(client, f"/requests/{request_id}/contact")
    return client.post(f"/requests/{request_id}/contact", data={"csrf_token": token, **data})


def test_retry_of_a_permanently_refused_address_warns_until_it_is_corrected(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert f'href="/requests/{request_id}/contact"' in detail
    warning = "it will be refused again unless you correct the contact details first"
    assert warning in detail  # the JavaScript confirm() text
    assert warning in act(logged_in, request_id, "retry", confirmed=False).get_data(as_text=True)  # without JS
    assert warning in page(logged_in)  # the row's Retry button

    response = contact_form(logged_in, request_id, email="Ada.Fixed@Example.com")
    assert response.status_code == 302
    req = get(request_id)
    assert req.customer_email == "ada.fixed@example.com"  # stored as intake stores e-mails
    assert events(request_id)[-1] == "contact_changed"
    detail = logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    assert warning not in detail and "corrected since: Retry to send to the new one" in detail
    event = db.session.query(TestimonialRequestEvent).filter_by(request_id=request_id, type="contact_changed").one()
    assert re.fullmatch(r"email x•••@fail\.test → a•••@example\.com \(by .+\)", event.detail)

    act(logged_in, request_id, "retry")
    cli("dispatch")
    assert get(request_id).status == "sent"
    assert outbox(request_id)[-1].to == "ada.fixed@example.com"


def test_a_phone_is_stored_in_e164_and_an_sms_request_needs_one(logged_in, clock, cli):
    campaign(clock, delay_days=0, channel="sms")
    request_id = order(logged_in, phone="+15550009999")
    cli("dispatch")
    response = contact_form(logged_in, request_id, email="", phone="")
    assert response.status_code == 400 and "it needs a phone number" in response.get_data(as_text=True)
    response = contact_form(logged_in, request_id, phone="555-123")
    assert response.status_code == 400 and "international format" in response.get_data(as_text=True)
    assert get(request_id).customer_phone == "+15550009999"
    assert "contact_changed" not in events(request_id)
    assert contact_form(logged_in, request_id, phone="+1 (555) 765-4321").status_code == 302
    assert get(request_id).customer_phone == "+15557654321"
    event = db.session.query(TestimonialRequestEvent).filter_by(request_id=request_id, type="contact_changed").one()
    assert "phone +1•••••9999 → +1•••••4321" in event.detail and "+15557654321" not in event.detail


@pytest.mark.parametrize(
    "data",
    [
        {"email": "not an address"},
        {"email": "a@b"},
        {"email": "x" * 250 + "@example.com"},
        {"phone": "12345"},
        {"phone": "+0123456789"},
    ],
)
def test_invalid_contact_details_are_a_400_and_change_nothing(logged_in, clock, cli, data):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    before = (get(request_id).customer_email, get(request_id).customer_phone)
    response = contact_form(logged_in, request_id, **{"email": before[0], "phone": before[1], **data})
    assert response.status_code == 400
    assert "invalid-feedback" in response.get_data(as_text=True)
    assert (get(request_id).customer_email, get(request_id).customer_phone) == before
    assert "contact_changed" not in events(request_id)


def test_a_contact_on_the_opt_out_list_is_refused(logged_in, clock, cli, form_post):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    form_post("/opt-outs/", data={"channel": "email", "contact": "gone@example.com"})
    response = contact_form(logged_in, request_id, email="gone@example.com")
    assert response.status_code == 400
    assert "gone@example.com is on the opt-out list" in response.get_data(as_text=True)
    assert get(request_id).customer_email != "gone@example.com"


def test_contact_details_of_a_finished_request_cannot_change(logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = order(logged_in)
    act(logged_in, request_id, "cancel")
    assert "Correct contact details" not in logged_in.get(f"/requests/{request_id}").get_data(as_text=True)
    page_html = logged_in.get(f"/requests/{request_id}/contact").get_data(as_text=True)
    assert "can no longer be changed" in page_html
    token = csrf_from(logged_in, "/requests/")
    response = logged_in.post(f"/requests/{request_id}/contact", data={"csrf_token": token, "email": "n@example.com"})
    assert response.status_code == 409
    assert get(request_id).customer_email != "n@example.com"


def test_contact_form_needs_login_and_a_csrf_token(client, logged_in, clock, cli):
    campaign(clock, delay_days=0)
    request_id = fail_permanently(logged_in, cli)
    response = logged_in.post(f"/requests/{request_id}/contact", data={"email": "new@example.com"})
    assert response.status_code == 400
    assert get(request_id).customer_email != "new@example.com"
    logged_in.post("/logout", data={"csrf_token": csrf_from(logged_in, "/requests/")})
    assert logged_in.get(f"/requests/{request_id}/contact").status_code == 302
