"""Approved testimonials on show: moderation (screen, bulk, CLI), the JSON feed (filters,
cursor, ETag, CORS), the wall and its framing policy, the widget script, the share page and
the public media URLs — and nothing pending, rejected or withdrawn ever leaks into them."""

import re

import pytest
from sqlalchemy import select

from app.clock import now
from app.extensions import db
from app.testimonials.models import Testimonial
from app.testimonials.moderation import PENDING, apply_action, initial_status, move
from app.testimonials.removal import withdraw
from tests.conftest import csrf_from
from tests.showcase_helpers import active_campaign, make_testimonial


@pytest.fixture
def site(app, client, clock):
    """Five testimonials: 1–3 of product p_1 (1 and 2 with video, 3 text only), 4–5 of p_2."""
    active_campaign(clock)
    made = []
    for n in range(1, 6):
        clock.advance(minutes=1)
        made.append(make_testimonial(client, clock, n, product_id="p_1" if n <= 3 else "p_2", video=n != 3))
    return made


def approve(*made):
    apply_action("approve", [m.id for m in made], now())
    db.session.commit()


def feed(client, query="", **headers):
    return client.get(f"/api/testimonials{query}", headers=headers)


def feed_ids(client, query=""):
    response = feed(client, query)
    assert response.status_code == 200, response.get_json()
    return [t["id"] for t in response.get_json()["testimonials"]]


# -- moderation ----------------------------------------------------------------------------


def test_new_testimonials_wait_for_moderation_and_the_nav_counts_them(site, logged_in):
    assert {t.status for t in db.session.scalars(select(Testimonial))} == {"pending"}
    page = logged_in.get("/testimonials/").get_data(as_text=True)
    assert re.search(r'title="testimonials waiting for moderation">5<', page)
    assert re.search(r'data-tab="pending"[^>]*>Pending <span[^>]*>5<', page)
    approve(site[0])
    page = logged_in.get("/testimonials/?status=approved").get_data(as_text=True)
    assert re.search(r'data-tab="approved"[^>]*>Approved <span[^>]*>1<', page)
    assert page.count('class="card shadow-sm mb-3 testimonial"') == 1


def test_bulk_approve_reject_and_feature_from_the_screen(site, logged_in, client):
    token = csrf_from(client, "/testimonials/")
    ids = [str(m.id) for m in site[:3]]
    response = client.post("/testimonials/bulk", data={"csrf_token": token, "action": "approve", "ids": ids})
    assert response.status_code == 303
    client.post("/testimonials/bulk", data={"csrf_token": token, "action": "reject", "ids": [str(site[2].id)]})
    client.post("/testimonials/bulk", data={"csrf_token": token, "action": "feature", "ids": [str(site[1].id)]})
    db.session.expire_all()
    status = {t.id: (t.status, t.featured) for t in db.session.scalars(select(Testimonial))}
    assert status[site[0].id] == ("approved", False)
    assert status[site[1].id] == ("approved", True)
    assert status[site[2].id] == ("rejected", False)
    assert status[site[3].id] == ("pending", False)
    # Nothing selected, an unknown action, a forged id: 400, nothing changes.
    for data in ({"action": "approve"}, {"action": "delete", "ids": ids}, {"action": "approve", "ids": ["x"]}):
        assert client.post("/testimonials/bulk", data={"csrf_token": token, **data}).status_code == 400
    page = client.get("/testimonials/?q=number+2").get_data(as_text=True)
    assert f'id="testimonial-{site[1].id}"' in page and f'id="testimonial-{site[0].id}"' not in page
    page = client.get("/testimonials/?product=p_2").get_data(as_text=True)
    assert page.count('class="card shadow-sm mb-3 testimonial"') == 2
    page = client.get("/testimonials/?has_video=no").get_data(as_text=True)
    assert page.count('class="card shadow-sm mb-3 testimonial"') == 1
    assert client.get("/testimonials/?created_from=2026-13-01").status_code == 400


def test_cli_approve_reject_feature(site, runner):
    result = runner.invoke(args=["testimonials", "approve", str(site[0].id), str(site[1].id), "--json"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["testimonials", "feature", str(site[2].id)])
    assert result.exit_code == 0 and "featured" in result.output
    result = runner.invoke(args=["testimonials", "reject", str(site[1].id)])
    assert result.exit_code == 0
    result = runner.invoke(args=["testimonials", "approve", "999999"])
    assert result.exit_code == 1 and "not approved" in result.output
    db.session.expire_all()
    status = {t.id: (t.status, t.featured) for t in db.session.scalars(select(Testimonial))}
    assert status[site[0].id] == ("approved", False)
    assert status[site[1].id] == ("rejected", False)
    assert status[site[2].id] == ("approved", True)


def test_a_campaign_approves_high_ratings_on_arrival_and_the_rating_filters(app, client, clock):
    active_campaign(clock, auto_approve_min_rating=4)
    five = make_testimonial(client, clock, 1, rating="5")
    three = make_testimonial(client, clock, 2, rating="3")
    unrated = make_testimonial(client, clock, 3)
    status = {t.id: t.status for t in db.session.scalars(select(Testimonial))}
    db.session.rollback()
    assert status == {five.id: "approved", three.id: "pending", unrated.id: "pending"}
    approve(three)
    assert feed_ids(client, "?min_rating=4") == [five.public_id]
    assert feed_ids(client, "?min_rating=3") == [three.public_id, five.public_id]
    assert client.get("/api/testimonials").get_json()["testimonials"][1]["rating"] == 5


def test_auto_approve_rule_is_pure():
    assert initial_status(None, 5) == "pending"
    assert initial_status(4, None) == "pending"
    assert initial_status(4, 3) == "pending"
    assert initial_status(4, 4) == "approved"


# -- the feed ------------------------------------------------------------------------------


def test_feed_shows_only_approved_with_consent_featured_first(site, client):
    assert feed_ids(client) == []
    approve(site[0], site[1], site[3])
    apply_action("reject", [site[1].id], now())
    apply_action("feature", [site[0].id], now())
    db.session.commit()
    response = feed(client)
    body = response.get_json()
    assert [t["id"] for t in body["testimonials"]] == [site[0].public_id, site[3].public_id]
    assert body["next"] is None
    first = body["testimonials"][0]
    assert set(first) >= {
        "id",
        "product_id",
        "product_title",
        "display_name",
        "rating",
        "text",
        "video_url",
        "poster_url",
        "created_at",
        "featured",
    }
    assert first["featured"] is True and first["display_name"] == "Name1 S." and first["product_id"] == "p_1"
    assert first["video_url"] == f"http://testserver.local/media/{site[0].public_id}/video"
    assert "customer1@example.com" not in response.get_data(as_text=True)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age=" in response.headers["Cache-Control"] and "public" in response.headers["Cache-Control"]


def test_feed_filters_limit_and_cursor(site, client):
    approve(*site)
    assert feed_ids(client, "?product_id=p_2") == [site[4].public_id, site[3].public_id]
    assert feed_ids(client, "?has_video=false") == [site[2].public_id]
    assert len(feed_ids(client, "?has_video=true")) == 4
    assert len(feed_ids(client, "?campaign_id=1")) == 5 and feed_ids(client, "?campaign_id=2") == []
    seen, cursor = [], ""
    while True:
        body = feed(client, f"?limit=2{cursor}").get_json()
        assert len(body["testimonials"]) <= 2
        seen += [t["id"] for t in body["testimonials"]]
        if not body["next"]:
            break
        cursor = f"&cursor={body['next']}"
    assert seen == [m.public_id for m in reversed(site)]
    for bad in (
        "?limit=101",
        "?limit=0",
        "?limit=x",
        "?min_rating=6",
        "?has_video=maybe",
        "?cursor=garbage",
        "?campaign_id=-1",
        "?limit=1&limit=2",
    ):
        response = feed(client, bad)
        assert response.status_code == 400, bad
        assert response.get_json()["field"] and response.headers["Access-Control-Allow-Origin"] == "*"


def test_feed_etag_answers_304_until_something_changes(site, client):
    approve(site[0])
    first = feed(client)
    etag = first.headers["ETag"]
    again = feed(client, If_None_Match=etag)
    assert again.status_code == 304 and again.get_data() == b""
    approve(site[1])
    changed = feed(client, If_None_Match=etag)
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    preflight = client.options(
        "/api/testimonials", headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "GET"}
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert client.post("/api/testimonials").status_code == 405


# -- media, wall, share page -----------------------------------------------------------------


def test_media_urls_work_while_public_and_answer_404_after_unpublishing(site, client):
    approve(site[0])
    url = f"/media/{site[0].public_id}/video"
    with client.get(url, headers={"Range": "bytes=0-9"}) as response:
        assert response.status_code == 206 and len(response.get_data()) == 10
    assert client.get(f"/t/{site[0].public_id}").status_code == 200
    assert client.get(f"/media/{site[1].public_id}/video").status_code == 404  # pending
    assert client.get(f"/t/{site[1].public_id}").status_code == 404
    apply_action("reject", [site[0].id], now())
    db.session.commit()
    assert client.get(url).status_code == 404
    assert client.get(f"/t/{site[0].public_id}").status_code == 404
    assert client.get(f"/media/{site[0].public_id}/other").status_code == 404


def test_wall_lists_public_ones_sets_no_cookie_and_frames_only_for_allowed_origins(app_factory, site, clock):
    approve(site[0], site[2], site[3])
    app = app_factory(EMBED_ALLOWED_ORIGINS="https://shop.example, http://127.0.0.1:8123 not-an-origin")
    with app.app_context():
        client = app.test_client()
        response = client.get("/embed/wall?product_id=p_1&theme=dark")
        page = response.get_data(as_text=True)
        assert response.status_code == 200
        assert 'class="theme-dark"' in page
        assert f'data-id="{site[0].public_id}"' in page and f'data-id="{site[2].public_id}"' in page
        assert site[1].public_id not in page and site[3].public_id not in page
        assert f'data-video="/media/{site[0].public_id}/video"' in page
        assert "<script>" not in page and "Set-Cookie" not in response.headers
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://shop.example http://127.0.0.1:8123;" in csp + ";"
        assert "script-src 'self'" in csp
        assert client.get("/embed/wall?theme=neon").status_code == 400
        assert client.get("/embed/wall?limit=500").status_code == 400
    plain = app_factory().test_client().get("/embed/wall")
    assert "frame-ancestors 'self'" in plain.headers["Content-Security-Policy"]
    assert "https://shop.example" not in plain.headers["Content-Security-Policy"]


def test_share_page_has_open_graph_tags(site, client):
    approve(site[0])
    page = client.get(f"/t/{site[0].public_id}").get_data(as_text=True)
    assert '<meta property="og:title" content="Name1 S. on Product p_1">' in page
    assert f'<meta property="og:video" content="http://testserver.local/media/{site[0].public_id}/video">' in page
    assert f'<meta property="og:url" content="http://testserver.local/t/{site[0].public_id}">' in page
    assert "customer1@example.com" not in page


def test_widget_script_and_the_dashboard_snippet(site, logged_in):
    script = logged_in.get("/embed/widget.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert b"data-testimonials" in script.get_data() and b"testimonials:height" in script.get_data()
    page = logged_in.get("/testimonials/embed?product=p_1&theme=dark").get_data(as_text=True)
    assert "&lt;div data-testimonials data-product-id=&#34;p_1&#34; data-theme=&#34;dark&#34;&gt;&lt;/div&gt;" in page
    assert "http://testserver.local/embed/widget.js" in page
    assert 'data-testimonials data-product-id="p_1" data-theme="dark"' in page  # the live preview
    assert "EMBED_ALLOWED_ORIGINS" in page


@pytest.mark.parametrize("unpublish", ["pending", "reject", "withdraw", "erase"])
def test_an_unpublished_testimonial_is_nowhere_public(site, client, runner, unpublish):
    approve(site[0], site[1])
    public = {
        "feed": "/api/testimonials",
        "wall": "/embed/wall",
        "share": f"/t/{site[0].public_id}",
        "media": f"/media/{site[0].public_id}/video",
    }
    with client.get(public["media"]) as media:
        assert media.status_code == 200
    assert site[0].public_id in client.get(public["feed"]).get_data(as_text=True)
    assert site[0].public_id in client.get(public["wall"]).get_data(as_text=True)
    if unpublish == "pending":
        apply_action("reject", [site[0].id], now())
        db.session.commit()
        move([site[0].id], PENDING, now())
    elif unpublish == "reject":
        apply_action("reject", [site[0].id], now())
    elif unpublish == "withdraw":
        withdraw(db.session.get(Testimonial, site[0].id), now())
    db.session.commit()
    if unpublish == "erase":
        assert runner.invoke(args=["customers", "erase", site[0].email, "--yes"]).exit_code == 0
    assert site[0].public_id not in client.get(public["feed"]).get_data(as_text=True)
    assert site[0].public_id not in client.get(public["wall"]).get_data(as_text=True)
    assert site[1].public_id in client.get(public["feed"]).get_data(as_text=True)  # the other one stays
    assert client.get(public["share"]).status_code == 404
    assert client.get(public["media"]).status_code == 404
