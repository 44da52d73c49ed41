from tests.factories import campaign, order_body


def test_webhook_creates_a_request_that_a_tick_sends(client, clock, cli):
    campaign(clock, delay_days=0)
    response = client.post("/webhooks/orders", json=order_body())
    assert response.status_code == 202
    report = cli("dispatch")
    assert report["sent"] == 1
    [message] = cli("outbox", "list")
    assert message["to"] == "ada@example.com"
