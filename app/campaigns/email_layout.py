"""The email every default template is sent in: the shop's logo (or name), a heading, the
product's picture, a few paragraphs, one clear button and a small unsubscribe line.

Built for email clients, not browsers: one centred 560 px table that shrinks to the
screen on phones, inline styles only (clients drop <style> blocks and external CSS), no
script, no web font, and a plain-text part made from the same pieces (``plain_text``).
"""

from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)

LAYOUT = _env.from_string("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light"><title>{{ subject }}</title></head>
<body style="margin:0;padding:0;background:#f3f4f7;">
<div style="display:none;max-height:0;overflow:hidden;">{{ preheader }}</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f7;">
<tr><td align="center" style="padding:24px 12px;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:560px;background:#ffffff;border-radius:12px;font-family:-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;color:#1f2330;">
<tr><td style="padding:24px 28px 8px 28px;border-top:5px solid {{ brand_color }};border-radius:12px 12px 0 0;">
{% if logo_url %}<img src="{{ logo_url }}" alt="{{ shop_name }}" height="40" style="display:block;height:40px;width:auto;max-width:200px;border:0;">
{% else %}<div style="font-size:18px;font-weight:700;color:{{ brand_color }};">{{ shop_name }}</div>{% endif %}
</td></tr>
<tr><td style="padding:12px 28px 0 28px;"><h1 style="margin:0;font-size:22px;line-height:1.3;font-weight:700;">{{ heading }}</h1></td></tr>
{% if product_image_url %}<tr><td style="padding:18px 28px 0 28px;">
<img src="{{ product_image_url }}" alt="{{ product_title }}" width="120" height="120" style="display:block;width:120px;height:120px;object-fit:cover;border-radius:10px;border:0;background:#eeeeee;">
</td></tr>{% endif %}
<tr><td style="padding:10px 28px 0 28px;font-size:16px;line-height:1.55;">
{% for paragraph in paragraphs %}<p style="margin:12px 0;">{{ paragraph }}</p>{% endfor %}
</td></tr>
<tr><td style="padding:14px 28px 26px 28px;">
<table role="presentation" cellpadding="0" cellspacing="0"><tr><td style="border-radius:10px;background:{{ brand_color }};">
<a href="{{ link }}" style="display:inline-block;padding:14px 26px;font-size:16px;font-weight:700;color:#ffffff;text-decoration:none;border-radius:10px;">{{ button_text }}</a>
</td></tr></table>
<p style="margin:14px 0 0 0;font-size:13px;color:#6b7080;">Or open this link: <a href="{{ link }}" style="color:{{ brand_color }};word-break:break-all;">{{ link }}</a></p>
</td></tr>
</table>
<p style="max-width:560px;margin:14px auto 0 auto;font-family:Helvetica,Arial,sans-serif;font-size:12px;line-height:1.5;color:#8a8f9c;">
You get this email because you ordered from {{ shop_name }}. <a href="{{ unsubscribe_link }}" style="color:#8a8f9c;">Unsubscribe</a>.</p>
</td></tr></table>
</body></html>""")


def split_paragraphs(text):
    """Body text → paragraphs (a blank line separates them; single newlines are kept as spaces)."""
    blocks = [
        " ".join(line.strip() for line in block.splitlines() if line.strip())
        for block in (text or "").replace("\r\n", "\n").split("\n\n")
    ]
    return [b for b in blocks if b]


def render_layout(*, subject, heading, paragraphs, button_text, context):
    return LAYOUT.render(
        subject=subject or "",
        preheader=paragraphs[0] if paragraphs else heading,
        heading=heading,
        paragraphs=paragraphs,
        button_text=button_text,
        link=context["link"],
        unsubscribe_link=context["unsubscribe_link"],
        shop_name=context["shop_name"],
        logo_url=context.get("logo_url") or "",
        brand_color=context.get("brand_color") or "#3b5bdb",
        product_image_url=context.get("product_image_url") or "",
        product_title=context.get("product_title") or "",
    )


def plain_text(*, heading, paragraphs, button_text, context):
    """The text part of a simple-mode email, from the same pieces as its HTML."""
    parts = [heading, *paragraphs, f"{button_text}: {context['link']}", f"Unsubscribe: {context['unsubscribe_link']}"]
    return "\n\n".join(p for p in parts if p)
