"""The export ZIP: exactly the chosen testimonials, their JSON/CSV records with the consent,
and every stored file (original, playable version, poster) byte for byte; streamed."""

import csv
import io
import json
import zipfile

import pytest

from app.clock import now
from app.extensions import db
from app.storage import get_storage
from app.testimonials.models import Testimonial
from app.testimonials.moderation import apply_action
from tests.showcase_helpers import MP4, active_campaign, make_testimonial

POSTER = b"\xff\xd8\xff\xe0" + b"poster" * 50
PLAYABLE = b"\x00\x00\x00\x18ftypisom" + b"playable" * 100


@pytest.fixture
def site(app, client, clock):
    active_campaign(clock)
    made = [
        make_testimonial(
            client,
            clock,
            n,
            product_id="p_1" if n <= 3 else "p_2",
            video=n != 3,
            text='=HYPERLINK("x")' if n == 2 else None,
        )
        for n in range(1, 5)
    ]
    apply_action("approve", [made[0].id, made[1].id, made[2].id, made[3].id], now())
    apply_action("reject", [made[1].id], now())
    # What the video job leaves behind for testimonial 1: a playable version and a poster.
    storage = get_storage()
    storage.save("videos/t1-playable.mp4", io.BytesIO(PLAYABLE), "video/mp4")
    storage.save("posters/t1.jpg", io.BytesIO(POSTER), "image/jpeg")
    first = db.session.get(Testimonial, made[0].id)
    first.playable_key, first.playable_content_type, first.poster_key = (
        "videos/t1-playable.mp4",
        "video/mp4",
        "posters/t1.jpg",
    )
    first.video_status = "ready"
    db.session.commit()
    return made


def read_zip(data):
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    return archive


def test_cli_export_holds_exactly_the_chosen_testimonials_and_their_files(site, runner, tmp_path):
    out = tmp_path / "export.zip"
    result = runner.invoke(
        args=["testimonials", "export", "--out", str(out), "--status", "approved", "--product", "p_1", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["testimonials"] == 2
    archive = read_zip(out.read_bytes())
    names = set(archive.namelist())
    t1, t3 = site[0].id, site[2].id
    assert names == {
        "testimonials.json",
        "testimonials.csv",
        f"videos/{t1}-original.mp4",
        f"videos/{t1}-playable.mp4",
        f"posters/{t1}.jpg",
    }
    assert archive.read(f"videos/{t1}-original.mp4") == MP4
    assert archive.read(f"videos/{t1}-playable.mp4") == PLAYABLE
    assert archive.read(f"posters/{t1}.jpg") == POSTER
    records = json.loads(archive.read("testimonials.json"))["testimonials"]
    assert [r["id"] for r in records] == [t3, t1]
    first = records[1]
    assert first["customer_email"] == "customer1@example.com" and first["consent"] is True
    assert {"consent_text", "consent_at", "consent_ip"} <= set(first)
    assert first["video_file"] == f"videos/{t1}-original.mp4" and first["poster_file"] == f"posters/{t1}.jpg"
    rows = list(csv.DictReader(io.StringIO(archive.read("testimonials.csv").decode())))
    assert [int(r["id"]) for r in rows] == [t3, t1] and rows[0]["video_file"] == ""


def test_dashboard_export_follows_the_filter_and_keeps_formulas_as_text(site, logged_in):
    response = logged_in.get("/testimonials/export.zip?status=rejected")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    archive = read_zip(response.get_data())
    [row] = list(csv.DictReader(io.StringIO(archive.read("testimonials.csv").decode())))
    assert row["id"] == str(site[1].id) and row["text"] == '\'=HYPERLINK("x")'
    assert logged_in.get("/testimonials/export.zip?status=nonsense").status_code == 400
    everything = read_zip(logged_in.get("/testimonials/export.zip").get_data())
    assert len(json.loads(everything.read("testimonials.json"))["testimonials"]) == 4


def test_a_file_missing_from_storage_is_named_not_fatal(site, runner, tmp_path):
    get_storage().delete("posters/t1.jpg")
    out = tmp_path / "export.zip"
    assert runner.invoke(args=["testimonials", "export", "--out", str(out)]).exit_code == 0
    archive = read_zip(out.read_bytes())
    assert "posters/t1.jpg is missing" in archive.read("missing.txt").decode()
