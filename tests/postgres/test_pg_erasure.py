"""Erasure on PostgreSQL: the search of every table, the intake's one-statement opt-out +
erasure check (a UNION), and the overview's totals afterwards."""

import pytest

from tests.erasure.test_erasure import (
    site,  # noqa: F401  (fixture)
    test_erasure_leaves_no_trace_keeps_the_totals_and_blocks_a_later_order,  # noqa: F401
)

pytestmark = pytest.mark.postgres
