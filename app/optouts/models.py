"""One suppression list for both channels."""

from sqlalchemy import String, UniqueConstraint, and_, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import utcnow
from app.dbtypes import UTCDateTime
from app.extensions import db


class OptOut(db.Model):
    __tablename__ = "opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(5))  # email | sms
    contact: Mapped[str] = mapped_column(String(254))  # lower-cased email or E.164 phone
    source: Mapped[str] = mapped_column(String(40))  # link, sms_stop, sendgrid, twilio_21610, merchant…
    detail: Mapped[str | None] = mapped_column(String(255))
    created_at = mapped_column(UTCDateTime, default=utcnow, nullable=False)

    __table_args__ = (UniqueConstraint("channel", "contact", name="uq_optout_contact"),)


def normalise_contact(channel, contact):
    return contact.strip().lower() if channel == "email" else contact.strip()


def opted_out_channels(email, phone):
    """The channels on which this customer has opted out (one query for both)."""
    pairs = []
    if email:
        pairs.append(and_(OptOut.channel == "email", OptOut.contact == normalise_contact("email", email)))
    if phone:
        pairs.append(and_(OptOut.channel == "sms", OptOut.contact == normalise_contact("sms", phone)))
    if not pairs:
        return set()
    return set(db.session.scalars(select(OptOut.channel).where(or_(*pairs))))
