"""The overview speaks testimonials first: the moderation queue, the latest ones and the
funnel first message → opened → testimonial per campaign and product, video/text split."""

import re

from app.clock import now
from app.extensions import db
from app.testimonials.moderation import apply_action
from tests.showcase_helpers import active_campaign, make_testimonial


def test_overview_shows_the_queue_latest_and_funnel(app, client, clock, logged_in):
    active_campaign(clock)
    made = [
        make_testimonial(client, clock, n, product_id="p_1" if n <= 2 else "p_2", video=n != 2, send_first=True)
        for n in (1, 2, 3)
    ]
    apply_action("approve", [made[0].id], now())
    db.session.commit()
    page = logged_in.get("/").get_data(as_text=True)
    assert re.search(r'data-kpi="Waiting for moderation">2<', page)
    assert page.index('id="testimonials-overview"') < page.index('id="kpis"')  # testimonials first
    assert page.count('class="col"><a class="text-decoration-none') == 3
    assert 'data-funnel="campaign"' in page and 'data-funnel="product"' in page
    rows = re.findall(
        r"<tr><td class=\"text-break\">([^<]*)</td><td class=\"text-end\">(\d+)</td>\s*"
        r"<td class=\"text-end\">(\d+) .*?</td>\s*<td class=\"text-end\">(\d+) .*?</td>\s*"
        r"<td class=\"text-end\">(\d+) / (\d+)</td>",
        page,
    )
    assert ("Video reviews", "3", "3", "3", "2", "1") in rows
    assert ("Product p_1", "2", "2", "2", "1", "1") in rows and ("Product p_2", "1", "1", "1", "1", "0") in rows
