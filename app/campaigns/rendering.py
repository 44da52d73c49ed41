"""Rendering message templates in a Jinja sandbox.

Merchants write templates; the sandbox keeps a template from reaching anything but the
variables listed here.
"""

import re
from functools import lru_cache
from html import unescape

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

from app.campaigns.email_layout import plain_text, render_layout, split_paragraphs

VARIABLES = {
    "first_name": "The customer's first name (falls back to 'there')",
    "last_name": "The customer's last name",
    "product_title": "The product's title",
    "product_image_url": "The product image's address",
    "shop_name": "Your shop's name (Settings)",
    "order_id": "The order number",
    "link": "The customer's personal recording link",
    "unsubscribe_link": "The one-click unsubscribe link",
    "reminder_number": "Which reminder this is: 1, 2, … (0 in the first message)",
    "reminders_left": "How many reminders may still follow this message (0: this is the last one)",
    "postpone_url": "'Not arrived yet?': the link that moves the next reminder back by POSTPONE_DAYS (once)",
}

# A token is secrets.token_urlsafe(24): 32 characters. The sample link has the real length,
# so the SMS counter counts what a customer really receives.
TOKEN_LENGTH = 32
SAMPLE_TOKEN = "SampleToken-0123456789abcdefABCD"
assert len(SAMPLE_TOKEN) == TOKEN_LENGTH

SAMPLE = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "product_title": "Blue ceramic mug",
    "product_image_url": "https://shop.example/mug.jpg",
    "shop_name": "Demo Shop",
    "order_id": "1001",
    "link": f"https://shop.example/r/{SAMPLE_TOKEN}",
    "unsubscribe_link": f"https://shop.example/u/{SAMPLE_TOKEN}",
    "reminder_number": 0,
    "reminders_left": 2,
    "postpone_url": f"https://shop.example/r/{SAMPLE_TOKEN}/postpone",
}

# What one rendered message may be: an email's HTML or text part, and an SMS (ten
# concatenated segments). A template that produces more is refused in the preview, at
# save and at send: `{{ 'x' * 30000000 }}` must not become a 30 MB answer or message.
MAX_OUTPUT = {"email": 100_000, "sms": 1_600}


class TemplateProblem(ValueError):
    pass


class OutputTooLong(TemplateProblem):
    def __init__(self, limit):
        super().__init__(
            f"the rendered message is longer than {limit:,} characters, the most a message may be; "
            "shorten the template (a loop or a repeated string makes it grow)"
        )


class LimitedSandbox(SandboxedEnvironment):
    """The sandbox, with ``*`` and ``**`` checked before they run: a string or list
    repeated past the output limit, or a power too large to compute, is refused at once
    instead of being built in memory."""

    intercepted_binops = frozenset({"*", "**"})
    MAX_POWER_BITS = 4096

    def call_binop(self, context, operator, left, right):
        limit = max(MAX_OUTPUT.values())
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int) and len(seq) * times > limit:
                    raise OutputTooLong(limit)
        elif (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and max(left.bit_length(), 1) * right > self.MAX_POWER_BITS
        ):
            raise TemplateProblem(f"cannot render: {left} ** {right} is too large a number")
        return super().call_binop(context, operator, left, right)


_text_env = LimitedSandbox(undefined=StrictUndefined, autoescape=False)
_html_env = LimitedSandbox(undefined=StrictUndefined, autoescape=True)


def check(source, *, html=False):
    """Raise TemplateProblem for a syntax error or an unknown variable."""
    env = _html_env if html else _text_env
    try:
        parsed = env.parse(source or "")
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"syntax error on line {exc.lineno}: {exc.message}") from exc
    unknown = sorted(meta.find_undeclared_variables(parsed) - VARIABLES.keys())
    if unknown:
        raise TemplateProblem(
            "unknown variable"
            + ("s " if len(unknown) > 1 else " ")
            + ", ".join(unknown)
            + "; available: "
            + ", ".join(VARIABLES)
        )


@lru_cache(maxsize=512)
def compiled(source, html=False):
    """The compiled template for one version of a template's text (compiling costs far
    more than rendering; the text itself is the key, so an edit is a new entry)."""
    return (_html_env if html else _text_env).from_string(source)


def render(source, context, *, html=False, limit=MAX_OUTPUT["email"]):
    """Render one template string; raises TemplateProblem when it cannot be rendered or
    its output passes ``limit`` characters (rendering stops there: a loop cannot run on)."""
    try:
        pieces, size = [], 0
        for piece in compiled(source or "", html).generate(**context):
            size += len(piece)
            if size > limit:
                raise OutputTooLong(limit)
            pieces.append(piece)
        return "".join(pieces)
    except TemplateProblem:
        raise
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"syntax error on line {exc.lineno}: {exc.message}") from exc
    except Exception as exc:  # undefined variables, sandbox violations
        raise TemplateProblem(f"cannot render: {exc}") from exc


def render_message(template, context):
    """(subject, html, text) for a MessageTemplate (or anything with its fields).

    Simple mode (email): subject, heading, body paragraphs and button text, laid out by
    ``email_layout``, with the plain-text part made from the same pieces. HTML mode: the
    merchant's own HTML; an empty text part is made from the HTML."""
    limit = MAX_OUTPUT["sms" if getattr(template, "channel", "email") == "sms" else "email"]
    subject = render(template.subject, context, limit=limit) if template.subject else None
    if getattr(template, "mode", "html") == "simple" and template.channel == "email":
        heading = render(template.heading or "", context, limit=limit).strip()
        # Rendered whole, then split: a condition may span paragraphs. The layout escapes.
        paragraphs = split_paragraphs(render(template.body or "", context, limit=limit))
        button = render(template.button_text or "", context, limit=limit).strip() or "Record my video"
        pieces = {"heading": heading, "paragraphs": paragraphs, "button_text": button, "context": context}
        html, text = render_layout(subject=subject, **pieces), plain_text(**pieces)
    else:
        html = render(template.html, context, html=True, limit=limit) if template.html else None
        text = (
            render(template.text, context, limit=limit) if (template.text or "").strip() else text_from_html(html or "")
        )
    if len(html or "") > limit or len(text or "") > limit:  # the pieces together, in the layout
        raise OutputTooLong(limit)
    return subject, html, text


def text_from_html(html):
    """A readable plain-text part for an HTML email that has none: paragraphs kept, links
    written out after their words."""
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", html)
    text = re.sub(r'(?is)<a\b[^>]*href="([^"]*)"[^>]*>(.*?)</a>', lambda m: f"{m.group(2)} ({m.group(1)})", text)
    text = re.sub(r"(?i)<br\s*/?>", "\n", text)
    text = re.sub(r"(?i)</(p|div|h[1-6]|li|tr|table)>", "\n\n", text)
    text = unescape(re.sub(r"<[^>]+>", "", text))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def reminder_variables(slot, max_reminders):
    """reminder_number / reminders_left for slot ``slot`` of a campaign with ``max_reminders``."""
    return {"reminder_number": slot, "reminders_left": max(int(max_reminders or 0) - slot, 0)}


def message_context(request, *, shop_name, base_url, slot=0, max_reminders=0, logo_url=None, brand_color=None):
    return {
        "first_name": request.customer_first_name or "there",
        "last_name": request.customer_last_name or "",
        "product_title": request.product_title,
        "product_image_url": request.product_image_url or "",
        "shop_name": shop_name,
        "order_id": request.order_id,
        "link": f"{base_url}/r/{request.token}",
        "unsubscribe_link": f"{base_url}/u/{request.token}",
        **reminder_variables(slot, max_reminders),
        # For the email layout only (not template variables).
        "logo_url": logo_url,
        "brand_color": brand_color,
        "postpone_url": f"{base_url}/r/{request.token}/postpone",
    }
