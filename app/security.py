"""Security headers on every response (one ``after_request`` of our own).

Why not Flask-Talisman: it would also force HTTPS redirects and session-cookie flags that
config.py already owns, and its per-view options are keyword arguments on one global
object; what we need is a default policy plus small per-route or per-blueprint changes
(the customer's recording page wants the camera, embeddable pages name who may frame
them), which this module does in a few lines.

Defaults (every response, unless a view set the header itself):
- Content-Security-Policy: our own scripts only (no inline script anywhere), styles from
  our files (inline style attributes are allowed: the email previews are the customer's
  email, inline styles and all, shown in a sandboxed srcdoc frame that inherits this
  policy), images also from https: (a product's picture on the shop's CDN), no plugins,
  forms post only to us, and ``frame-ancestors 'none'``.
- X-Frame-Options: DENY, unless the page's frame-ancestors allows someone.
- X-Content-Type-Options: nosniff; Referrer-Policy: same-origin (the customer's link
  carries its token in the path: it must never reach another site in a Referer).
- Permissions-Policy: no camera, microphone or location unless the route asks.
- Strict-Transport-Security in production.

A route changes its policy with ``@content_security(**directives)`` (a callable value is
called per request: e.g. the embed origins from configuration) and
``@permissions(camera="(self)")``; a blueprint with ``blueprint_security(bp, csp=…,
permissions=…)``. Directive names use underscores for dashes: ``frame_ancestors``.
"""

from flask import current_app, request

DEFAULT_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: https:",
    "media-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
DEFAULT_PERMISSIONS = {"camera": "()", "microphone": "()", "geolocation": "()", "payment": "()", "usb": "()"}
HSTS = "max-age=31536000"

_blueprint_overrides = {}  # blueprint name → {"csp": {...}, "permissions": {...}}


def _names(directives):
    return {name.replace("_", "-"): value for name, value in directives.items()}


def content_security(**directives):
    """Decorator: this view's CSP directives replace the defaults of the same name."""

    def mark(view):
        view.csp_overrides = {**getattr(view, "csp_overrides", {}), **_names(directives)}
        return view

    return mark


def permissions(**features):
    """Decorator: this view's Permissions-Policy features, e.g. camera="(self)"."""

    def mark(view):
        view.permissions_overrides = {**getattr(view, "permissions_overrides", {}), **_names(features)}
        return view

    return mark


def blueprint_security(blueprint, *, csp=None, permissions=None):
    """Every route of ``blueprint`` gets these CSP directives / permissions (a route's own
    decorator still wins)."""
    _blueprint_overrides[blueprint.name] = {"csp": _names(csp or {}), "permissions": _names(permissions or {})}


_static_headers = {}  # (view, blueprint, kind) → the header's text, when its policy has no callable value


def _header(defaults, kind, render):
    """The CSP or Permissions-Policy text of this request's route: made once per route
    and kept, unless a value of its policy is a callable (called per request)."""
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    key = (view, request.blueprint, kind)  # the view itself: another app may reuse an endpoint's name
    text = _static_headers.get(key)
    if text is not None:
        return text
    blueprint = _blueprint_overrides.get(request.blueprint or "", {})
    merged = {**defaults, **blueprint.get(kind, {}), **getattr(view, f"{kind}_overrides", {})}
    text = render({name: value() if callable(value) else value for name, value in merged.items()})
    if not any(callable(value) for value in merged.values()):
        _static_headers[key] = text
    return text


def _permissions_header(features):
    return ", ".join(f"{name}={value}" for name, value in features.items())


def csp_header(directives):
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items() if value is not None)


def add_security_headers(response):
    headers = response.headers
    if "Content-Security-Policy" not in headers:
        headers["Content-Security-Policy"] = _header(DEFAULT_CSP, "csp", csp_header)
    elif "frame-ancestors" not in headers["Content-Security-Policy"]:  # a view's own policy
        headers["Content-Security-Policy"] += "; frame-ancestors 'none'"
    if "X-Frame-Options" not in headers and framed_by_nobody(headers["Content-Security-Policy"]):
        headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    if headers.get("Referrer-Policy") != "no-referrer":  # the one stricter value a page may choose
        headers["Referrer-Policy"] = "same-origin"
    if "Permissions-Policy" not in headers:
        headers["Permissions-Policy"] = _header(DEFAULT_PERMISSIONS, "permissions", _permissions_header)
    if current_app.config.get("PRODUCTION"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def framed_by_nobody(csp):
    for directive in csp.split(";"):
        name, _, value = directive.strip().partition(" ")
        if name == "frame-ancestors":
            return value.strip() == "'none'"
    return True  # no frame-ancestors: X-Frame-Options is the only guard


def init_app(app):
    app.after_request(add_security_headers)
