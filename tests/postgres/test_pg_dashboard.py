"""Dashboard screens whose SQL differs by database, on PostgreSQL: the home page's figures
and the Requests Log search (PostgreSQL's LIKE is case-sensitive, SQLite's is not)."""

import re

import pytest

from tests.factories import campaign, item, order_body, post_order, tick

pytestmark = pytest.mark.postgres


def test_the_home_page_shows_the_figures(logged_in, client, clock):
    campaign(clock, delay_days=0)
    assert post_order(client, order_body()).status_code == 202
    tick(clock)

    page = logged_in.get("/?from=2026-11-20&to=2026-11-20")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-kpi="Requests scheduled">1<' in html and 'data-kpi="Send success rate">100.0 %<' in html


def search(client, q):
    response = client.get("/requests/", query_string={"q": q})
    assert response.status_code == 200, response.get_data(as_text=True)
    return [int(x) for x in re.findall(r'data-request-id="(\d+)"', response.get_data(as_text=True))]


def test_requests_log_search_finds_a_product_title_in_any_case(logged_in, client, clock):
    campaign(clock, delay_days=0)
    body = order_body(items=[item("li_1", "p_1", title="Blue mug"), item("li_2", "p_2", title="Cotton tee")])
    mug, tee = post_order(client, body).get_json()["created"]

    assert search(logged_in, "Cotton") == [tee]
    assert search(logged_in, "cotton") == [tee]
    assert search(logged_in, "BLUE MUG") == [mug]
