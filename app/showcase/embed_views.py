"""The dashboard page that shows the merchant the snippet for the shop's pages, with the
real widget as preview (at /testimonials/embed, beside the Testimonials screen)."""

from flask import render_template, request, url_for

from app.settings.current import current_settings
from app.showcase.branding import THEMES, embed_allowed_origins
from app.testimonials.services import filter_choices, public_count
from app.web import dashboard_blueprint

bp = dashboard_blueprint("showcase_embed", __name__, url_prefix="/testimonials")


@bp.get("/embed")
def embed():
    """The snippet a merchant pastes on a product page, with the real widget as preview."""
    products, _ = filter_choices()
    product = (request.args.get("product") or "").strip()[:64] or None
    theme = request.args.get("theme") if request.args.get("theme") in THEMES else "light"
    base = current_settings().public_base_url.rstrip("/")
    attributes = (f' data-product-id="{product}"' if product else "") + (
        f' data-theme="{theme}"' if theme != "light" else ""
    )
    snippet = (
        f'<div data-testimonials{attributes}></div>\n<script src="{base}{url_for("showcase.widget")}" async></script>'
    )
    return render_template(
        "showcase/embed.html",
        products=products,
        product=product,
        theme=theme,
        themes=THEMES,
        snippet=snippet,
        origins=embed_allowed_origins(),
        feed_url=base + url_for("showcase.feed", **({"product_id": product} if product else {})),
        public_count=public_count(product),
    )
