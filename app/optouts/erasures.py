"""The erasure list: the contacts whose data was erased on request, kept only as an HMAC
(keyed with the app's SECRET_KEY). The intake skips a later order from such a contact with
a reason unless the merchant lifts the block (the erasure itself: app.erasure)."""

import hashlib
import hmac
from datetime import UTC, datetime

from flask import current_app
from sqlalchemy import and_, bindparam, literal, or_, select, union_all

from app.clock import as_utc
from app.optouts.models import ContactErasure, OptOut
from app.optouts.services import OptOutInvalid, clean_contact
from app.prepared import Prepared


def contact_hash(channel, contact):
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    return hmac.new(key, f"{channel}:{contact}".encode(), hashlib.sha256).hexdigest()


def contact_hashes(email, phone):
    """The HMACs of a customer's email address and phone number (those that are valid)."""
    found = []
    for value in (email, phone):
        text = (value or "").strip()
        if text:
            channel = "email" if "@" in text else "sms"
            try:
                found.append(contact_hash(channel, clean_contact(channel, text)))
            except OptOutInvalid:
                continue
    return found


def _reason(erased_at):
    return f"customer erased on request on {erased_at:%Y-%m-%d} (lift it under Customers › Erasures to ask again)"


# Built once (the intake runs it on every order): the customer's opt-outs and the erasures
# in force for their contacts, UNIONed.
_opt_outs, _erasures = OptOut.__table__, ContactErasure.__table__
REFUSALS = Prepared(
    union_all(
        select(_opt_outs.c.channel, literal(None).label("at")).where(
            or_(
                and_(_opt_outs.c.channel == "email", _opt_outs.c.contact == bindparam("email_contact")),
                and_(_opt_outs.c.channel == "sms", _opt_outs.c.contact == bindparam("phone_contact")),
            )
        ),
        select(literal("erased"), _erasures.c.erased_at).where(
            _erasures.c.contact_hash.in_(bindparam("hashes", expanding=True)), _erasures.c.lifted_at.is_(None)
        ),
    )
)


def refusals_read(email_contact, phone_contact, hashes, dialect):
    """The customer's opt-outs and erasures in force, as one bound statement for the
    intake's fixed handful (the two lookups UNIONed; ``app.prepared``): its rows give
    ``refusals``. The contacts as the suppression list stores them (``normalise_contact``),
    ``hashes`` as the erasure list does (``contact_hashes``). None when the customer has
    neither an email address nor a phone."""
    if not email_contact and not phone_contact and not hashes:
        return None
    params = {"email_contact": email_contact, "phone_contact": phone_contact, "hashes": hashes}
    return REFUSALS.bind(dialect, params)


def refusals(rows):
    """(opted-out channels, erasure reason or None) from ``refusals_read``'s rows."""
    opted_out, erased = set(), []
    for kind, at in rows:
        if kind == "erased":
            erased.append(as_utc(at) if not isinstance(at, str) else datetime.fromisoformat(at).replace(tzinfo=UTC))
        else:
            opted_out.add(kind)
    return opted_out, (_reason(min(erased)) if erased else None)
