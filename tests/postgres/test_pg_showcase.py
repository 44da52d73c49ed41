"""The public feed's keyset cursor and filters and the overview's funnel, on PostgreSQL
(the same tests as on SQLite, on a fresh PostgreSQL database each)."""

import pytest

from tests.dashboard.test_overview_testimonials import test_overview_shows_the_queue_latest_and_funnel  # noqa: F401
from tests.showcase.test_showcase import (  # noqa: F401
    site,  # noqa: F401  (fixture)
    test_feed_etag_answers_304_until_something_changes,
    test_feed_filters_limit_and_cursor,
    test_feed_shows_only_approved_with_consent_featured_first,
)

pytestmark = pytest.mark.postgres
