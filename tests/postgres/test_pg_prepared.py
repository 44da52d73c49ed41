"""tests/test_prepared.py's checks on PostgreSQL (named driver parameters, casts)."""

from tests.test_prepared import check_later_values_one_per_row, check_prepared_statements_match_core


def test_prepared_statements_give_what_core_gives(app):
    check_prepared_statements_match_core()


def test_a_prepared_insert_fills_later_values_row_by_row(app):
    check_later_values_one_per_row()
