"""Why a request was cancelled, in the merchant's words (pure).

A ``cancelled`` event's detail is written by the code that cancels (an opt-out, an order
cancellation or refund, an archived campaign, a person in the Requests Log); this reads
it back into one sentence.
"""

import re

from app.lifecycle.names import mask_phones

OPT_OUT_SOURCES = {
    "link": "with the unsubscribe link",
    "sms_stop": "by replying STOP",
    "sendgrid_unsubscribe": "from the email's unsubscribe link",
    "sendgrid_group_unsubscribe": "from the email's unsubscribe link",
    "sendgrid_spamreport": "by reporting an email as spam",
    "twilio_21610": "by replying STOP",
    "merchant": "(added to the opt-out list by you)",
}
OPTED_OUT_REASON = re.compile(r"^customer opted out \((?P<channel>email|sms), (?P<source>[^)]*)\)$")
ORDER_REASON = re.compile(r"^order (?P<what>cancelled|refunded)(?: \(event (?P<event>.*)\))?$")
CAMPAIGN_REASON = re.compile(r"^campaign \d+ archived$")
BY_MERCHANT = re.compile(r"^cancelled by (?P<who>.+) from the Requests Log$")


def explain_cancel(detail):
    """A ``cancelled`` event's detail → the reason in plain words."""
    detail = (detail or "").strip()
    if not detail:
        return "Cancelled (no reason recorded)."
    opted = OPTED_OUT_REASON.match(detail)
    if opted:
        channel = "email" if opted["channel"] == "email" else "text messages"
        how = OPT_OUT_SOURCES.get(opted["source"], f"(via {opted['source']})")
        return f"Cancelled: the customer opted out of {channel} {how}."
    if detail == "customer opted out":
        return "Cancelled: the customer has opted out of every channel this request uses."
    order = ORDER_REASON.match(detail)
    if order:
        return f"Cancelled: the order was {order['what']}."
    if CAMPAIGN_REASON.match(detail):
        return "Cancelled: the campaign was archived."
    merchant = BY_MERCHANT.match(detail)
    if merchant:
        return f"Cancelled by {merchant['who']} from the Requests Log."
    return f"Cancelled: {mask_phones(detail)}."
