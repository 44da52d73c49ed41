"""Failure sentences: what went wrong with a message and what the merchant can do, in the
merchant's words (pure functions of the stored fields).

Every failure is stored as data (``app.providers.base.Failure``: channel, provider, code,
retryable, the provider's message, its kind, and whether a delivery report brought it),
on ``slot_sends`` per attempt and on the request's ``failed`` events. Every sentence the
dashboard shows about a failure is built here from those fields, taking the request's
state into account (a "retryable" error on a request that already gave up is not retried
any more). The provider's own words stay available beside it (tooltip, detail page, CSV).
What a provider's code means comes from that provider's module (``failure_meaning``).
"""

from dataclasses import dataclass

from app.campaigns.models import CHANNEL_NAMES
from app.lifecycle.names import mask_phones, provider_name
from app.lifecycle.states import FAILED, TERMINAL
from app.providers.base import (
    ADDRESS,
    INTERRUPTED,
    OPTED_OUT,
    RATE_LIMITED,
    REFUSED,
    SETUP,
    TEMPLATE,
    UNAVAILABLE,
    UNDELIVERED,
    failure_meaning,
)

# Kinds for which pressing Retry alone sends to the same place and fails the same way.
PERMANENT_KINDS = frozenset({ADDRESS, OPTED_OUT, TEMPLATE, SETUP, REFUSED})


@dataclass(frozen=True)
class Explanation:
    channel: str | None
    kind: str
    text: str  # the plain sentence: "Email: …; … — what to do"
    raw: str  # the provider's words (the technical line), phone numbers masked
    permanent: bool  # Retry alone would fail the same way
    fix_contact: bool  # correcting the email address / phone number is the way out


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def explain(failure, *, status, attempts=0, retrying=False, contact_changed=False):
    """One channel's failure in plain words, with what to do given the request's status.

    ``attempts``: tries of the failed message so far (the request's ``attempts``);
    ``retrying``: the dispatcher will try again on its own; ``contact_changed``: the
    merchant corrected the contact details after the failure.
    """
    channel = failure.channel
    name = CHANNEL_NAMES.get(channel, (channel or "Message").capitalize())
    what, advice = _what_and_advice(failure, status, attempts, retrying, contact_changed)
    return Explanation(
        channel=channel,
        kind=failure.kind,
        text=f"{name}: {what}" + (f" — {advice}" if advice else ""),
        raw=mask_phones(failure.summary()),
        permanent=failure.kind in PERMANENT_KINDS,
        fix_contact=failure.kind == ADDRESS and not contact_changed,
    )


def explain_failures(failures, *, status, attempts=0, retrying=False, contact_changed=False):
    """[Failure] → [Explanation], in that order."""
    return [
        explain(failure, status=status, attempts=attempts, retrying=retrying, contact_changed=contact_changed)
        for failure in failures
    ]


def _what_and_advice(failure, status, attempts, retrying, contact_changed):
    """(what happened, what to do or None), by the failure's kind."""
    kind = failure.kind
    context = _Context(failure, status, attempts, retrying, contact_changed)
    if kind in (UNAVAILABLE, RATE_LIMITED):
        return _transient(context)
    sentence = _SENTENCES.get(kind, _unknown)
    return sentence(context)


@dataclass(frozen=True)
class _Context:
    failure: object
    status: str
    attempts: int
    retrying: bool
    contact_changed: bool

    @property
    def failed(self):
        return self.status == FAILED

    @property
    def finished(self):
        return self.status in TERMINAL

    @property
    def contact(self):
        return "phone number" if self.failure.channel == "sms" else "email address"

    @property
    def address(self):
        return "number" if self.failure.channel == "sms" else "address"

    @property
    def why(self):
        """What the provider's code means, from the provider's table (None: nothing known)."""
        return failure_meaning(self.failure)

    @property
    def reported(self):
        provider = self.failure.provider
        return f" (reported by {provider_name(provider)})" if self.failure.reported and provider else ""

    def fix(self, what):
        """ "fix X, then Retry" on a failed request; "fix X" while it still sends; nothing once finished."""
        return f"fix {what}, then Retry" if self.failed else None if self.finished else f"fix {what}"


def _transient(c):
    what = (
        "the provider's sending limit was reached" if c.failure.kind == RATE_LIMITED else "the provider was unavailable"
    )
    if c.retrying:
        return f"{what}; trying again automatically", None
    if c.failed:
        tries = f"; gave up after {_plural(c.attempts, 'attempt')}" if c.attempts > 1 else "; gave up"
        return what + tries, "Retry to send again"
    other = {"email": "SMS", "sms": "email"}.get(c.failure.channel)
    went = f"; this message went out by {other} only" if other and not c.finished else None
    return what + (went or "; this message was not sent on this channel"), None


def _interrupted(c):
    what = "sending was interrupted, so it is unknown whether the message arrived"
    return what, ("Retry sends it again (the customer may get it twice)" if c.failed else None)


def _template(c):
    # A template failure's message is the template problem itself (nothing reached a provider).
    cause = c.failure.message
    what = "the message template could not be filled in" + (f" ({cause})" if cause else "")
    return what, c.fix("the campaign's template")


def _setup(c):
    return f"the provider refused your account settings: {c.why or c.failure.message}", c.fix("the provider settings")


def _opted_out(c):
    what = (c.why or "the customer opted out") + c.reported
    return what, (None if c.finished else f"no more messages go to this {c.contact}")


def _address(c):
    what = f"the {c.address} was rejected permanently" + (f" ({c.why})" if c.why else "") + c.reported
    if c.contact_changed:
        if c.failed:
            return what, "the contact details were corrected since: Retry to send to the new one"
        return what, None if c.finished else "the contact details were corrected since"
    if c.finished:
        return what, None
    if c.failed:
        return what, f"correct the {c.contact}, then Retry"
    return what, f"correct the {c.contact} so later reminders reach the customer"


def _undelivered(c):
    what = "the message was not delivered" + (f": {c.why}" if c.why else "") + c.reported
    return what, ("Retry to send again, or correct the contact details first" if c.failed else None)


def _refused(c):
    what = "the provider refused the message permanently" + c.reported
    return what, (f"check the {c.contact} and the template, then Retry" if c.failed else None)


def _unknown(c):
    what = f"the message failed ({c.failure.message or 'no reason recorded'})"
    return what, ("Retry to send again" if c.failed else None)


_SENTENCES = {
    INTERRUPTED: _interrupted,
    TEMPLATE: _template,
    SETUP: _setup,
    OPTED_OUT: _opted_out,
    ADDRESS: _address,
    UNDELIVERED: _undelivered,
    REFUSED: _refused,
}


def changed_since_failure(event_types):
    """True when a ``contact_changed`` event follows the last ``failed`` one (events in
    time order): the failure was about the contact details as they were before."""
    changed = False
    for type_ in event_types:
        if type_ == "failed":
            changed = False
        elif type_ == "contact_changed":
            changed = True
    return changed
