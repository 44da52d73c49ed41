"""Contacts shown masked: enough for a person to recognise, not enough to copy (pure
functions, strings in, strings out). Lists and log lines use them; a request's own page
shows the contact in full."""

import re

PHONE = re.compile(r"\+[1-9]\d{6,14}\b")


def mask_phone(phone):
    """+15551234567 → +1•••••4567: enough to recognise, not enough to copy."""
    if not phone:
        return ""
    if len(phone) <= 6:
        return "•" * len(phone)
    return f"{phone[:2]}•••••{phone[-4:]}"


def mask_phones(text):
    """Every E.164 phone number in ``text`` masked; e-mail addresses left as they are."""
    return PHONE.sub(lambda m: mask_phone(m.group(0)), text or "")


def mask_email(email):
    """ada@example.com → a•••@example.com (for the timeline of a contact change)."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}" if domain else mask_phone(email)
