"""Erasing a customer on request: every trace of one email or phone, and a keyed hash of
it kept so that a later order from the same contact is recognised and skipped."""
