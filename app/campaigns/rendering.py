"""Rendering message templates in a Jinja sandbox.

Merchants write templates; the sandbox keeps a template from reaching anything but the
variables listed here.
"""

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import SandboxedEnvironment

VARIABLES = {
    "first_name": "The customer's first name (falls back to 'there')",
    "last_name": "The customer's last name",
    "product_title": "The product's title",
    "product_image_url": "The product image's address",
    "shop_name": "Your shop's name (SHOP_NAME)",
    "order_id": "The order number",
    "link": "The customer's personal recording link",
    "unsubscribe_link": "The one-click unsubscribe link",
}

SAMPLE = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "product_title": "Blue ceramic mug",
    "product_image_url": "https://shop.example/mug.jpg",
    "shop_name": "Demo Shop",
    "order_id": "1001",
    "link": "https://shop.example/r/sample-token",
    "unsubscribe_link": "https://shop.example/u/sample-token",
}

_text_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
_html_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)


class TemplateProblem(ValueError):
    pass


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
            "unknown variable" + ("s " if len(unknown) > 1 else " ") + ", ".join(unknown)
            + "; available: " + ", ".join(VARIABLES)
        )


def render(source, context, *, html=False):
    """Render one template string; raises TemplateProblem when it cannot be rendered."""
    env = _html_env if html else _text_env
    try:
        return env.from_string(source or "").render(**context)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(f"syntax error on line {exc.lineno}: {exc.message}") from exc
    except Exception as exc:  # undefined variables, sandbox violations
        raise TemplateProblem(f"cannot render: {exc}") from exc


def render_message(template, context):
    """(subject, html, text) for a MessageTemplate."""
    subject = render(template.subject, context) if template.subject else None
    html = render(template.html, context, html=True) if template.html else None
    text = render(template.text, context)
    return subject, html, text


def message_context(request, *, shop_name, base_url):
    return {
        "first_name": request.customer_first_name or "there",
        "last_name": request.customer_last_name or "",
        "product_title": request.product_title,
        "product_image_url": request.product_image_url or "",
        "shop_name": shop_name,
        "order_id": request.order_id,
        "link": f"{base_url}/r/{request.token}",
        "unsubscribe_link": f"{base_url}/u/{request.token}",
    }
