"""The active campaigns' rules, as the intake needs them: read once, re-read on a change.

Every webhook asks "which active campaigns have this trigger, oldest first?". The answer
changes only when a merchant edits a campaign, so it is kept per app (one per process) as
plain frozen values, and each webhook checks one cheap fingerprint of the campaigns table
instead: its row count, highest id and the sum of the rows' ``revision`` (a new random
number on every change, ``app.campaigns.models.new_revision``). A change made by another
process changes the fingerprint just the same, so every process re-reads at its next
webhook. The check runs inside the caller's transaction (or on the caller's
connection), so it sees what that transaction sees.
"""

from dataclasses import dataclass
from threading import Lock

from flask import current_app
from sqlalchemy import BigInteger, func, select

from app.campaigns.models import ACTIVE, Campaign
from app.extensions import db
from app.intake.eligibility import CampaignRules


@dataclass(frozen=True)
class ActiveCampaign:
    rules: CampaignRules
    delay_days: int

    @property
    def id(self):
        return self.rules.id


class _Cache:
    def __init__(self):
        self.lock = Lock()
        self.fingerprint = None
        self.by_trigger = {}


_campaigns = Campaign.__table__
# Count, highest id and sum of revisions: changes with any campaign added, changed or removed.
FINGERPRINT = (
    select(func.count(_campaigns.c.id)).scalar_subquery(),
    select(func.coalesce(func.max(_campaigns.c.id), 0)).scalar_subquery(),
    # Revisions are random 31-bit numbers: their sum passes 2**31 with two campaigns or
    # more, so it is compared as a BIGINT (as an INTEGER, PostgreSQL refused the intake's
    # snapshot check with "integer out of range").
    select(func.coalesce(func.sum(_campaigns.c.revision, type_=BigInteger), 0)).scalar_subquery(),
)
_READ_FINGERPRINT = select(*FINGERPRINT)


_READ_ACTIVE = (
    select(_campaigns).where(_campaigns.c.status == ACTIVE).order_by(_campaigns.c.created_at, _campaigns.c.id)
)


def active_campaigns(trigger, fingerprint=None, connection=None):
    """The active campaigns with ``trigger``, oldest first (the oldest one wins an item).

    ``fingerprint``: FINGERPRINT's values, when the caller has just read them in this
    transaction (the intake's snapshot has them); else they are read here.
    ``connection``: where to read them on a change (the intake's own, on PostgreSQL: a
    webhook holds one pooled connection, never two); else the session's."""
    cache = current_app.extensions.setdefault("active_campaigns", _Cache())
    reader = db.session if connection is None else connection
    if fingerprint is None:
        fingerprint = reader.execute(_READ_FINGERPRINT).one()
    fingerprint = tuple(fingerprint)
    with cache.lock:
        if cache.fingerprint == fingerprint:
            return cache.by_trigger.get(trigger, ())
    by_trigger = {}
    for campaign in reader.execute(_READ_ACTIVE):  # rows: the rules need the columns alone
        by_trigger.setdefault(campaign.trigger, []).append(
            ActiveCampaign(CampaignRules.of(campaign), campaign.delay_days)
        )
    by_trigger = {key: tuple(value) for key, value in by_trigger.items()}
    with cache.lock:
        cache.fingerprint, cache.by_trigger = fingerprint, by_trigger
    return by_trigger.get(trigger, ())
