"""No input produces a 500: every route of ``app.url_map``, every method, as an anonymous
visitor and as a logged-in merchant, with hostile ids, query strings, bodies and headers.

Each case asserts that
- the answer is never a 5xx, and no answer shows a traceback;
- an HTML error is the app's own page (the shop's name in it), never Werkzeug's bare one;
- a JSON API (the webhooks, the template preview) answers an error as JSON with a message;
- refused input (any 4xx) changed nothing: every table has the rows it had, and no
  connection committed a write (SQLite's ``PRAGMA data_version``);
- no NUL character ever reaches an SQL statement (PostgreSQL refuses them: a 500 there).

The cases run against one seeded site (demo history through the real paths) per visitor;
a case id reads ``<visitor> <METHOD> <path> · <input>``.
"""

import base64
import hashlib
import hmac
import io
import itertools
import json
import shutil
import sqlite3
from dataclasses import dataclass, field, replace
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from sqlalchemy import Numeric, String, event, select
from twilio.request_validator import RequestValidator

from app import create_app
from app.auth.services import create_admin
from app.campaigns.models import Campaign, MessageTemplate
from app.demo.seed import seed_demo
from app.extensions import db
from app.lifecycle.models import TestimonialRequest
from app.optouts.models import OptOut
from app.testimonials.models import Testimonial
from app.testimonials.moderation import apply_action
from config import TestConfig
from tests.conftest import CSRF_RE, FakeClock, make_config, parse
from tests.events_helpers import SendGridSigner

ORDER_SECRET = "order-webhook-secret"
SHOPIFY_SECRET = "shpss_no500"
TWILIO_TOKEN = "twilio-auth-token-no500"
PUBLIC_BASE_URL = "https://reviews.shop.example"
SENDGRID = SendGridSigner()
ADMIN = ("merchant@shop.example", "correct horse battery")
SITE_CONFIG = {
    "ORDER_WEBHOOK_SECRET": ORDER_SECRET,
    "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
    "TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
    "SENDGRID_WEBHOOK_PUBLIC_KEY": SENDGRID.public_key,
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    # Every hostile login must reach the form, not stop at the 11th with a 429 (the limit
    # itself is tested in tests/test_security.py).
    "LOGIN_RATE_LIMIT": "1000000 per minute",
}
JSON_APIS = ("/webhooks/", "/templates/preview", "/api/")
VISITORS = ("anonymous", "admin")

# -- hostile values ------------------------------------------------------------------------

HOSTILE_IDS = ("0", "-1", "99999999999999999999", "abc")
HOSTILE_SEGMENTS = ("abc", "0", "-1", "x" * 300, "%00", "%FF%FE", "..%2F..%2Fconfig.py", "%F0%9F%92%A5")
HUGE = "x" * 100_000
HOSTILE_VALUES = {
    "empty": "",
    "blank": "   ",
    "text": "abc",
    "negative": "-1",
    "zero": "0",
    "huge number": "99999999999999999999",
    "unicode digit": "²",
    "10**12": str(10**12),
    "float overflow": "1e309",
    "NaN": "NaN",
    "infinity": "Infinity",
    "bad date": "2026-13-45",
    "huge string": HUGE,
    "121 characters": "x" * 121,
    "256 characters": "x" * 256,
    "NUL byte": "nul\x00byte",
    "emoji": "💥 ünïcødé",
    "markup": "<script>alert(1)</script>{{ 7*7 }}",
}
QUERY_VALUES = {
    name: HOSTILE_VALUES[name]
    for name in (
        "empty",
        "text",
        "negative",
        "huge number",
        "unicode digit",
        "10**12",
        "bad date",
        "huge string",
        "NUL byte",
        "emoji",
    )
}
# Query parameters the views read (besides the paging every list shares).
QUERY_PARAMS = {
    "dashboard.home": ("period", "from", "to", "campaign"),
    "requests.index": (
        "status",
        "campaign_id",
        "channel",
        "created_from",
        "created_to",
        "sent_from",
        "sent_to",
        "has_error",
        "q",
        "page",
    ),
    "requests.export": (
        "status",
        "campaign_id",
        "channel",
        "created_from",
        "created_to",
        "sent_from",
        "sent_to",
        "has_error",
        "q",
    ),
    "intake_log.index": ("order_id", "page"),
    "outbox.index": ("request_id", "to", "page"),
    "optouts.index": ("q", "channel", "page"),
    "testimonials.index": (
        "status",
        "product",
        "campaign_id",
        "min_rating",
        "has_video",
        "created_from",
        "created_to",
        "q",
        "request",
        "page",
    ),
    "showcase_embed.embed": ("product", "theme"),
    "testimonials.export": ("status", "product", "campaign_id", "min_rating", "has_video", "q"),
    "erasure.confirm": ("contact", "request"),
    "showcase.feed": ("product_id", "campaign_id", "min_rating", "has_video", "limit", "cursor"),
    "showcase.wall": ("product_id", "campaign_id", "min_rating", "has_video", "limit", "cursor", "theme", "frame"),
    "templates.create": ("channel", "kind"),
    "auth.login": ("next",),
}
SHARED_PARAMS = ("page", "per_page", "sort")

# Real rows of the seeded site, filled in at run time (``{campaign}`` in a path).
EXISTING = {
    "campaign_id": "{campaign}",
    "template_id": "{template}",
    "request_id": "{request}",
    "testimonial_id": "{testimonial}",
    "optout_id": "{optout}",
    "token": "{token}",
    "upload_id": "{upload}",
    "filename": "app.css",
    "public_id": "{public}",
    "kind": "video",
}
VALID_ACTION = {"requests.act": "cancel", "testimonials.change": "approve"}
# Endpoints that act on a valid CSRF token alone (confirmations, one-click unsubscribe):
# hostile fields cannot make them refuse, so they get hostile ids and missing tokens only.
ACT_ON_TOKEN_ALONE = {
    "campaigns.pause",
    "campaigns.resume",
    "campaigns.archive",
    "testimonials.change",
    "optouts.remove",
    "auth.logout",
    "public.unsubscribe_page",
    "public.postpone_page",
}
# Values for empty fields a save needs (new campaign / template) besides the one made hostile.
PLAIN_VALUES = {
    "name": "Hostile input test",
    "text": "Hi {{ first_name }}, how is your {{ product_title }}?",
    "contact": "someone@example.com",
    "to": "+15551230000",
    "email": ADMIN[0],
}
# Fields no hostile form sets: ``confirmed=yes`` would carry out an action, ``preview``
# makes the template form preview instead of validating for a save.
NEVER_SET = {"csrf_token", "confirmed", "preview"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # may hold {placeholders} for the seeded rows; query string included
    what: str  # the input, in words
    data: object = None  # dict → form fields, bytes → raw body
    json: object = None
    content_type: str | None = None
    headers: tuple = ()
    csrf: bool = False  # add this visitor's valid CSRF token
    sign: str | None = None  # sign the body like this webhook's sender: orders, shopify, sendgrid, twilio
    query: str | None = None  # raw query string (invalid UTF-8: bytes as latin-1 characters)
    endpoint: str = ""  # the rule the case was made for
    form_page: str | None = None  # fill the form for ``path`` shown on this page, then set ``data`` over it
    visitors: tuple = VISITORS  # who sends it

    def label(self):
        path = self.path if len(self.path) <= 60 else self.path[:57] + "…"
        return f"{self.method} {path} · {self.what}"


# -- routes --------------------------------------------------------------------------------


def _route_app():
    return create_app(make_config_for_routes())


def make_config_for_routes():
    return type("Config", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": "sqlite://", **SITE_CONFIG})


ROUTE_APP = _route_app()
RULES = sorted(ROUTE_APP.url_map.iter_rules(), key=lambda rule: (rule.rule, rule.endpoint))


def form_fields():
    """Every field name of every form the app defines (WTForms classes)."""
    from flask_wtf import FlaskForm

    names, pending = set(), [FlaskForm]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        names.update(k for k, v in vars(cls).items() if hasattr(v, "field_class"))
    return sorted(names - NEVER_SET | {"text", "consent", "next", "back", "action", "ids"})


FORM_FIELDS = form_fields()


def build(rule, **values):
    """The rule's path with these argument values (already URL-safe)."""
    path = rule.rule
    for arg, value in values.items():
        for spelled in (f"<{arg}>", f"<int:{arg}>", f"<path:{arg}>"):
            path = path.replace(spelled, value)
    return path


def existing_values(rule):
    values = {arg: EXISTING.get(arg, "abc") for arg in rule.arguments}
    if "action" in rule.arguments:
        values["action"] = VALID_ACTION.get(rule.endpoint, "abc")
    return values


def hostile_paths(rule):
    """(path, what): each argument in turn replaced by a hostile value, the rest real."""
    base = existing_values(rule)
    for arg in rule.arguments:
        is_int = type(rule._converters[arg]).__name__ == "IntegerConverter"
        for value in HOSTILE_IDS if is_int else HOSTILE_SEGMENTS:
            yield build(rule, **{**base, arg: value}), f"{arg}={value[:20]}"


def url_cases(rule):
    """Every method on the plain URL and on URLs with unknown ids, and one method it lacks."""
    path = build(rule, **existing_values(rule))
    for method in sorted(rule.methods):
        if rule.endpoint not in ACT_ON_TOKEN_ALONE or method != "POST":
            yield Case(method, path, "no input", csrf=method == "POST", endpoint=rule.endpoint)
        for hostile, what in hostile_paths(rule):
            yield Case(method, hostile, f"unknown {what}", csrf=method == "POST", endpoint=rule.endpoint)
    yield Case("PATCH", path, "a method the route does not take", endpoint=rule.endpoint)


def query_cases(rule):
    if "GET" not in rule.methods:
        return
    path = build(rule, **existing_values(rule))
    params = (*QUERY_PARAMS.get(rule.endpoint, ()), *SHARED_PARAMS)
    for param in dict.fromkeys(params):
        for name, value in QUERY_VALUES.items():
            yield Case("GET", f"{path}?{param}={quote(value)}", f"{param}: {name}")
        yield Case("GET", path, f"{param}: invalid UTF-8", query=f"{param}=%FF%FE\xff")
        yield Case("GET", f"{path}?{param}=1&{param}=2", f"{param} twice")
    everything = "&".join(f"{p}={quote(HOSTILE_VALUES['huge string'][:3000])}" for p in params)
    yield Case("GET", f"{path}?{everything}", "every parameter oversized")
    yield Case("GET", path, "Accept: application/json", headers=(("Accept", "application/json"),))


def form_cases(rule):
    """Forms with missing, wrongly typed, huge, NUL and invalid UTF-8 values (valid CSRF
    token, so the view itself has to refuse them), and bodies of the wrong kind."""
    if "POST" not in rule.methods or rule.rule.startswith("/webhooks/"):
        return
    path = build(rule, **existing_values(rule))
    yield Case("POST", path, "no CSRF token", data={name: "abc" for name in FORM_FIELDS})
    if rule.endpoint in ACT_ON_TOKEN_ALONE:
        return
    yield Case("POST", path, "empty body", csrf=True)
    yield Case("POST", path, "only a CSRF token", data={}, csrf=True)
    for name, value in HOSTILE_VALUES.items():
        yield Case("POST", path, f"every field {name}", data={f: value for f in FORM_FIELDS}, csrf=True)
    yield Case(
        "POST", path, "every field twice", csrf=True, data=b"&".join(f"{f}=a&{f}=b".encode() for f in FORM_FIELDS)
    )
    yield Case(
        "POST",
        path,
        "invalid UTF-8 form",
        csrf=True,
        data=b"&".join(f.encode() + b"=%FF%FE\xff\xfe" for f in FORM_FIELDS),
        content_type="application/x-www-form-urlencoded",
    )
    yield Case("POST", path, "JSON instead of a form", json={f: "abc" for f in FORM_FIELDS}, csrf=True)
    yield Case("POST", path, "text/plain body", data=b"name=abc", content_type="text/plain", csrf=True)
    yield Case(
        "POST", path, "multipart without boundary", data=b"--x\r\n", content_type="multipart/form-data", csrf=True
    )
    yield Case("POST", path, "2 MB field", data={"name": "x" * 2_000_000, "text": "x"}, csrf=True)


def one_field_cases():
    """A real form as the page fills it, with one field at a time made hostile: the values
    reach the services behind the form, not only its first validator."""
    from app.auth.forms import ChangePasswordForm, LoginForm
    from app.campaigns.forms import CampaignForm, TemplateForm, TestSendForm
    from app.optouts.forms import AddOptOutForm

    forms = (  # (page that shows the form, where it posts, the form's class, who)
        ("/campaigns/new", "/campaigns/new", CampaignForm, "admin"),
        ("/campaigns/{campaign}", "/campaigns/{campaign}", CampaignForm, "admin"),
        ("/templates/new?channel=sms", "/templates/new", TemplateForm, "admin"),
        ("/templates/{template}", "/templates/{template}", TemplateForm, "admin"),
        ("/templates/{template}", "/templates/{template}/test", TestSendForm, "admin"),
        ("/opt-outs/", "/opt-outs/", AddOptOutForm, "admin"),
        ("/login", "/login", LoginForm, "anonymous"),
        ("/account/password", "/account/password", ChangePasswordForm, "admin"),
    )
    for page, action, form_class, who in forms:
        fields = [
            name
            for name, value in vars(form_class).items()
            if hasattr(value, "field_class") and name not in NEVER_SET and "Submit" not in value.field_class.__name__
        ]
        endpoint = ROUTE_APP.url_map.bind("x").match(action.format(campaign=1, template=1), method="POST")[0]
        for name in fields:
            for what, value in HOSTILE_VALUES.items():
                yield Case(
                    "POST",
                    action,
                    f"{form_class.__name__}.{name} {what}",
                    data={name: value},
                    csrf=True,
                    form_page=page,
                    endpoint=endpoint,
                    visitors=(who,),
                )


def public_form_cases():
    """The customer's testimonial form on a real, open link."""
    path = "/r/{token}"
    for name, value in HOSTILE_VALUES.items():
        yield Case("POST", path, f"testimonial text {name}, no consent", data={"text": value}, csrf=True)
    yield Case(
        "POST", path, "testimonial with NUL text and consent", data={"text": "a\x00b", "consent": "yes"}, csrf=True
    )
    yield Case(
        "POST", path, "testimonial with a 2 MB text", data={"text": "x" * 2_000_000, "consent": "yes"}, csrf=True
    )
    yield Case("POST", path, "video that is not a file", data={"video": "abc", "consent": "yes"}, csrf=True)
    yield Case(
        "POST", path, "video of a wrong type", csrf=True, content_type="multipart/form-data", data=b""
    )  # replaced at run time by upload()
    yield Case(
        "POST",
        path,
        "invalid UTF-8 multipart",
        csrf=True,
        content_type="multipart/form-data; boundary=b",
        data=b'--b\r\nContent-Disposition: form-data; name="text"\r\n\r\n\xff\xfe\r\n--b--\r\n',
    )


TUS = (("Tus-Resumable", "1.0.0"),)
TUS_CREATE, TUS_UPLOAD = "/r/{token}/uploads", "/r/{token}/uploads/{upload}"


def tus_cases():
    """The resumable upload endpoints with a tus client's headers made hostile."""
    printable = {what: value for what, value in HOSTILE_VALUES.items() if value.isprintable() and len(value) < 5000}
    for what, value in printable.items():
        yield Case("POST", TUS_CREATE, f"tus Upload-Length {what}", headers=TUS + (("Upload-Length", value),))
        yield Case(
            "POST",
            TUS_CREATE,
            f"tus Upload-Metadata {what}",
            headers=TUS + (("Upload-Length", "100"), ("Upload-Metadata", f"filetype {value}")),
        )
        yield Case(
            "PATCH",
            TUS_UPLOAD,
            f"tus Upload-Offset {what}",
            headers=TUS + (("Upload-Offset", value),),
            data=b"abc",
            content_type="application/offset+octet-stream",
        )
    typed = base64.b64encode(b"text/plain").decode()
    yield Case(
        "POST",
        TUS_CREATE,
        "tus upload that says it is text",
        headers=TUS + (("Upload-Length", "100"), ("Upload-Metadata", f"filetype {typed}")),
    )
    yield Case("POST", TUS_CREATE, "tus upload past VIDEO_MAX_MB", headers=TUS + (("Upload-Length", str(10**12)),))
    yield Case("POST", TUS_CREATE, "tus deferred length", headers=TUS + (("Upload-Defer-Length", "1"),))
    yield Case(
        "POST",
        TUS_CREATE,
        "tus metadata with invalid UTF-8",
        headers=TUS
        + (("Upload-Length", "100"), ("Upload-Metadata", "filename " + base64.b64encode(b"\xff\xfe").decode())),
    )
    yield Case(
        "PATCH",
        TUS_UPLOAD,
        "tus PATCH at a wrong offset",
        headers=TUS + (("Upload-Offset", "99999"),),
        data=b"abc",
        content_type="application/offset+octet-stream",
    )
    yield Case(
        "PATCH",
        TUS_UPLOAD,
        "tus PATCH of the wrong content type",
        headers=TUS + (("Upload-Offset", "0"),),
        data=b"abc",
        content_type="application/json",
    )
    yield Case(
        "PATCH",
        TUS_UPLOAD,
        "tus PATCH past the upload's length",
        headers=TUS + (("Upload-Offset", "16"),),
        data=b"x" * 5000,
        content_type="application/offset+octet-stream",
    )
    yield Case("HEAD", "/r/{token}/uploads/" + "0" * 32, "tus HEAD of an unknown upload", headers=TUS)
    yield Case("DELETE", "/r/{token}/uploads/" + "0" * 32, "tus DELETE of an unknown upload", headers=TUS)
    yield Case(
        "POST",
        "/r/{token}",
        "testimonial with an unknown upload id",
        csrf=True,
        data={"upload_id": "0" * 32, "consent": "yes"},
    )
    yield Case(
        "POST",
        "/r/{token}",
        "testimonial with an unfinished upload",
        csrf=True,
        data={"upload_id": "{upload}", "consent": "yes"},
    )
    yield Case(
        "POST",
        "/r/{token}",
        "testimonial with a hostile rating",
        csrf=True,
        data={"rating": "6", "consent": "yes", "text": "x"},
    )


def needs_login(rule):
    blueprint = rule.endpoint.rpartition(".")[0]
    return any(f.__name__ == "require_login" for f in ROUTE_APP.before_request_funcs.get(blueprint, ()))


def only_admin(case):
    """A login page is all an anonymous visitor gets from the dashboard: fewer cases."""
    anonymous_too = case.what.startswith(("unknown", "no ", "a method", "every parameter"))
    return case if anonymous_too else replace(case, visitors=("admin",))


def dashboard_cases():
    for rule in RULES:
        if rule.rule.startswith("/webhooks/"):
            continue
        cases = [
            replace(case, endpoint=rule.endpoint) for case in (*url_cases(rule), *query_cases(rule), *form_cases(rule))
        ]
        yield from map(only_admin, cases) if needs_login(rule) else cases
    yield from one_field_cases()
    yield from video_cases()
    yield from public_form_cases()
    yield from tus_cases()
    yield Case("GET", "/no-such-page", "an unknown URL")
    yield Case("GET", "/%FF%FE", "an unknown URL in invalid UTF-8")
    yield Case(
        "POST",
        "/templates/preview",
        "preview of a template that does not render",
        csrf=True,
        data={
            "channel": "email",
            "kind": "initial",
            "subject": "{{ order.",
            "text": "{% for %}",
            "html": "{{ x|attr('__class__') }}",
            "name": "x",
        },
    )


# -- webhooks ------------------------------------------------------------------------------

GENERIC_BODIES = {
    "empty body": b"",
    "not JSON": b"hello",
    "truncated JSON": b'{"event_id": "e1", ',
    "null": b"null",
    "a number": b"123",
    "a string": b'"order"',
    "an empty object": b"{}",
    "an empty array": b"[]",
    "array of junk": b'[1, "x", null, [], {}]',
    "NaN": b'{"total": NaN}',
    "nested 100000 deep": b"[" * 100_000 + b"]" * 100_000,
    "invalid UTF-8": b'{"event_id": "\xff\xfe"}',
    "lone surrogate": b'{"event_id": "\\ud800"}',
    "NUL escape": b'{"event_id": "a\\u0000b"}',
    "over the size limit": b'{"x": "' + b"x" * (1024 * 1024 + 10) + b'"}',
}
HOSTILE_JSON = {
    "null": None,
    "empty string": "",
    "negative": -1,
    "huge integer": 10**20,
    "unicode digit": "²",
    "float": 1.5e308,
    "true": True,
    "list": [1],
    "object": {"a": 1},
    "huge string": "x" * 10_000,
    "121 characters": "x" * 121,
    "256 characters": "x" * 256,
    "bad date": "2026-13-45T25:61:00Z",
    # Real dates Python cannot turn into UTC (OverflowError), in every field of every webhook.
    "year 1 with an offset": "0001-01-01T00:00:00+01:00",
    "year 9999 with an offset": "9999-12-31T23:59:59-01:00",
    "NUL": "a\x00b",
    "lone surrogate": "\ud800",
}
ORDER = {
    "event_id": "evt-no500",
    "event_type": "order.delivered",
    "occurred_at": "2026-11-20T12:00:00Z",
    "order": {
        "id": "no500-1",
        "total": "59.90",
        "currency": "USD",
        "tags": ["vip"],
        "customer": {"email": "ada@example.com", "phone": "+15551234567", "first_name": "Ada", "last_name": "L"},
        "items": [
            {
                "id": "li_1",
                "product_id": "p_1",
                "sku": "MUG-1",
                "title": "Blue mug",
                "quantity": 2,
                "price": "19.95",
                "image_url": "https://shop.example/mug.jpg",
                "delivered": True,
            }
        ],
    },
}
SHOPIFY_ORDER = {
    "id": 5940139499999,
    "name": "#1999",
    "email": "ada@example.com",
    "phone": None,
    "total_price": "59.90",
    "currency": "USD",
    "tags": "vip",
    "customer": {"id": 1, "email": "ada@example.com", "phone": "+15551234567", "first_name": "Ada", "last_name": "L"},
    "line_items": [
        {
            "id": 1001,
            "product_id": 2001,
            "variant_id": 3001,
            "sku": "MUG-1",
            "title": "Blue mug",
            "name": "Blue mug",
            "quantity": 1,
            "price": "19.95",
            "fulfillment_status": "fulfilled",
            "gift_card": False,
        }
    ],
    "fulfillments": [],
    "updated_at": "2026-11-20T12:00:00-05:00",
}
SHOPIFY_TIMED = {  # one payload per topic that reads a time, with its time fields
    "orders/cancelled": {**SHOPIFY_ORDER, "cancelled_at": "2026-11-20T12:00:00-05:00"},
    "refunds/create": {
        "id": 77,
        "order_id": 5940139499999,
        "created_at": "2026-11-20T12:00:00-05:00",
        "processed_at": "2026-11-20T12:00:00-05:00",
        "refund_line_items": [{"id": 1, "line_item_id": 1001, "quantity": 1}],
    },
    "fulfillments/update": {
        "id": 88,
        "order_id": 5940139499999,
        "status": "success",
        "shipment_status": "delivered",
        "updated_at": "2026-11-20T12:00:00-05:00",
        "email": "ada@example.com",
        "line_items": SHOPIFY_ORDER["line_items"],
    },
    "fulfillment_events/create": {
        "id": 99,
        "order_id": 5940139499999,
        "fulfillment_id": 88,
        "status": "delivered",
        "happened_at": "2026-11-20T12:00:00-05:00",
        "created_at": "2026-11-20T12:00:00-05:00",
    },
    "orders/fulfilled": {**SHOPIFY_ORDER, "fulfillments": [{"id": 88, "created_at": "2026-11-20T12:00:00-05:00"}]},
}
SENDGRID_EVENT = {
    "email": "ada@example.com",
    "timestamp": 1795176000,
    "event": "delivered",
    "sg_event_id": "ev-no500",
    "sg_message_id": "msg-no500.filter",
    "request_id": "1",
    "campaign_id": "1",
    "slot": "0",
}
TWILIO_STATUS = {
    "AccountSid": "AC" + "0" * 32,
    "MessageSid": "SM" + "1" * 32,
    "MessageStatus": "delivered",
    "To": "+15551234567",
    "From": "+15017122661",
    "ErrorCode": "",
}
TWILIO_INBOUND = {
    "AccountSid": "AC" + "0" * 32,
    "MessageSid": "SM" + "2" * 32,
    "From": "+15551234567",
    "To": "+15017122661",
    "Body": "STOP",
    "NumMedia": "0",
}


def leaves(value, path=()):
    """Every (path, value) inside a JSON document, containers included."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from leaves(child, (*path, index))


def replaced(document, path, new):
    copy = json.loads(json.dumps(document))
    if not path:
        return new
    target = copy
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return copy


def mutations(document):
    """The document with each field in turn replaced by each hostile JSON value, or removed."""
    for path, _value in leaves(document):
        if not path:
            continue
        spelled = ".".join(map(str, path))
        for name, value in HOSTILE_JSON.items():
            yield f"{spelled} {name}", replaced(document, path, value)
        if isinstance(path[-1], str):
            parent = json.loads(json.dumps(document))
            target = parent
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]
            yield f"{spelled} missing", parent


def dumps(document):
    # ASCII escapes: a NUL or a lone surrogate arrives as \u0000 / \ud800, as JSON allows.
    return json.dumps(document).encode()


SERIAL = itertools.count(1)


def fresh_ids(document, key, default):
    """Each case its own event id: an accepted case must not make later ones duplicates."""
    for target in document if isinstance(document, list) else [document]:
        if isinstance(target, dict) and target.get(key) == default:
            target[key] = f"{default}-{next(SERIAL)}"
    return document


def order_cases():
    path = "/webhooks/orders"
    body = dumps(ORDER)
    for what, raw in GENERIC_BODIES.items():
        yield Case("POST", path, what, data=raw, content_type="application/json", sign="orders")
    for what, document in mutations(ORDER):
        yield Case(
            "POST",
            path,
            what,
            data=dumps(fresh_ids(document, "event_id", ORDER["event_id"])),
            content_type="application/json",
            sign="orders",
        )
    for header in ("", "sha256=", "sha256=zz", "md5=abc", "sha256=" + "0" * 64, "ünïcødé", "x" * 10_000):
        yield Case(
            "POST",
            path,
            f"signature {header[:12]!r}",
            data=body,
            content_type="application/json",
            headers=(("X-Webhook-Signature", header),),
        )
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "application/xml"):
        yield Case("POST", path, f"Content-Type {content_type}", data=body, content_type=content_type, sign="orders")
    yield Case("POST", path, "a form instead of JSON", data={"event_id": "x"}, sign="orders")


def shopify_cases():
    path = "/webhooks/shopify"
    body = dumps(SHOPIFY_ORDER)
    topic = (("X-Shopify-Topic", "orders/fulfilled"), ("X-Shopify-Webhook-Id", "wh-no500"))
    for what, raw in GENERIC_BODIES.items():
        yield Case("POST", path, what, data=raw, content_type="application/json", headers=topic, sign="shopify")
    for what, document in mutations(SHOPIFY_ORDER):
        yield Case(
            "POST",
            path,
            what,
            data=dumps(document),
            content_type="application/json",
            sign="shopify",
            headers=(topic[0], ("X-Shopify-Webhook-Id", f"wh-no500-{next(SERIAL)}")),
        )
    for name in (
        "X-Shopify-Topic",
        "X-Shopify-Webhook-Id",
        "X-Shopify-Triggered-At",
        "X-Shopify-Shop-Domain",
        "X-Shopify-Event-Id",
    ):
        for what, value in (
            ("empty", ""),
            ("huge", "x" * 5000),
            ("unicode", "ünïcødé/💥"),
            ("bad date", "2026-13-45T99:99:99Z"),
            ("year 1", "0001-01-01T00:00:00+01:00"),
            ("year 9999", "9999-12-31T23:59:59-01:00"),
            ("year 1969", "1969-12-31T00:00:00Z"),
        ):
            headers = dict(topic)
            headers[name] = value
            yield Case(
                "POST",
                path,
                f"{name} {what}",
                data=body,
                content_type="application/json",
                headers=tuple(headers.items()),
                sign="shopify",
            )
    for topic_name in (
        "orders/unknown",
        "fulfillment_events/create",
        "refunds/create",
        "fulfillments/create",
        "orders/cancelled",
        "app/uninstalled",
    ):
        yield Case(
            "POST",
            path,
            f"topic {topic_name} with an order body",
            data=body,
            content_type="application/json",
            sign="shopify",
            headers=(("X-Shopify-Topic", topic_name), ("X-Shopify-Webhook-Id", f"wh-{topic_name}")),
        )
    for header in ("", "abc", "ünïcødé", "x" * 10_000, base64.b64encode(b"\0" * 32).decode()):
        yield Case(
            "POST",
            path,
            f"HMAC {header[:12]!r}",
            data=body,
            content_type="application/json",
            headers=(*topic, ("X-Shopify-Hmac-Sha256", header)),
        )
    # The time fields each topic reads, out of range (and a delivery so late that the
    # campaign's delay passes the supported years).
    for topic_name, document in SHOPIFY_TIMED.items():
        for field_name in [k for k in document if k.endswith("_at")]:
            for what, value in (
                ("year 1", "0001-01-01T00:00:00+01:00"),
                ("year 9999", "9999-12-31T23:59:59-01:00"),
                ("year 1969", "1969-07-20T20:17:00Z"),
                ("year 8999", "8999-12-31T23:00:00Z"),
            ):
                yield Case(
                    "POST",
                    path,
                    f"{topic_name} {field_name} {what}",
                    data=dumps({**document, field_name: value}),
                    content_type="application/json",
                    sign="shopify",
                    headers=(("X-Shopify-Topic", topic_name), ("X-Shopify-Webhook-Id", f"wh-{next(SERIAL)}")),
                )
    late = {
        **SHOPIFY_TIMED["orders/fulfilled"],
        "fulfillments": [{"id": 88, "created_at": "0001-01-01T00:00:00+01:00"}],
    }
    yield Case(
        "POST",
        path,
        "orders/fulfilled fulfillments[0].created_at year 1",
        data=dumps(late),
        content_type="application/json",
        sign="shopify",
        headers=(("X-Shopify-Topic", "orders/fulfilled"), ("X-Shopify-Webhook-Id", f"wh-{next(SERIAL)}")),
    )


def sendgrid_cases():
    path = "/webhooks/sendgrid/events"
    for what, raw in GENERIC_BODIES.items():
        yield Case("POST", path, what, data=raw, content_type="application/json", sign="sendgrid")
    for what, document in mutations([SENDGRID_EVENT]):
        yield Case(
            "POST",
            path,
            what,
            data=dumps(fresh_ids(document, "sg_event_id", SENDGRID_EVENT["sg_event_id"])),
            content_type="application/json",
            sign="sendgrid",
        )
    body = dumps([SENDGRID_EVENT])
    for what, headers in (
        ("no signature", ()),
        (
            "signature not base64",
            (
                ("X-Twilio-Email-Event-Webhook-Signature", "!!!"),
                ("X-Twilio-Email-Event-Webhook-Timestamp", "1795176000"),
            ),
        ),
        (
            "signature of other bytes",
            (
                ("X-Twilio-Email-Event-Webhook-Signature", SENDGRID.sign(b"[]")),
                ("X-Twilio-Email-Event-Webhook-Timestamp", "1795176000"),
            ),
        ),
        (
            "unicode timestamp",
            (
                ("X-Twilio-Email-Event-Webhook-Signature", SENDGRID.sign(body)),
                ("X-Twilio-Email-Event-Webhook-Timestamp", "ünïcødé"),
            ),
        ),
        (
            "huge signature",
            (
                ("X-Twilio-Email-Event-Webhook-Signature", "A" * 20_000),
                ("X-Twilio-Email-Event-Webhook-Timestamp", "1795176000"),
            ),
        ),
    ):
        yield Case("POST", path, what, data=body, content_type="application/json", headers=headers)
    yield Case("POST", path, "a form instead of JSON", data={"event": "delivered"}, sign="sendgrid")


def twilio_cases():
    for path, params in (("/webhooks/twilio/status", TWILIO_STATUS), ("/webhooks/twilio/inbound", TWILIO_INBOUND)):
        yield Case("POST", path, "no fields", data={}, sign="twilio")
        for key in params:
            for name, value in HOSTILE_VALUES.items():
                yield Case(
                    "POST",
                    path,
                    f"{key} {name}",
                    sign="twilio",
                    data=fresh_ids({**params, key: value}, "MessageSid", params["MessageSid"]),
                )
            yield Case(
                "POST", path, f"{key} missing", data={k: v for k, v in params.items() if k != key}, sign="twilio"
            )
        for what, headers in (
            ("no signature", ()),
            ("signature 'abc'", (("X-Twilio-Signature", "abc"),)),
            ("unicode signature", (("X-Twilio-Signature", "ünïcødé"),)),
            ("SHA-256 settings header, SHA-1 signature", (("X-Twilio-Signature-Settings", "HMAC_SHA256"),)),
        )[:3]:
            yield Case("POST", path, what, data=params, headers=headers)
        yield Case(
            "POST",
            path,
            "invalid UTF-8 form",
            data=b"From=%FF%FE\xff&Body=\xfe",
            sign="twilio",
            content_type="application/x-www-form-urlencoded",
        )
        yield Case("POST", path, "JSON instead of a form", json=params, sign="twilio")
        yield Case(
            "POST", path, "over the size limit", data={**params, "Body": "x" * (1024 * 1024 + 10)}, sign="twilio"
        )


def webhook_cases():
    """Webhooks ignore the session: the anonymous visitor sends them all, the merchant's
    browser (a session cookie, no signature) the generic bodies."""
    for case in (*order_cases(), *shopify_cases(), *sendgrid_cases(), *twilio_cases()):
        yield case if case.what in GENERIC_BODIES else replace(case, visitors=("anonymous",))
    for rule in RULES:
        if rule.rule.startswith("/webhooks/"):
            yield from url_cases(rule)


def sign(case, raw):
    """Headers that make ``raw`` come from the webhook's real sender."""
    if case.sign == "orders":
        return {"X-Webhook-Signature": "sha256=" + hmac.new(ORDER_SECRET.encode(), raw, hashlib.sha256).hexdigest()}
    if case.sign == "shopify":
        digest = hmac.new(SHOPIFY_SECRET.encode(), raw, hashlib.sha256).digest()
        return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}
    if case.sign == "sendgrid":
        return SENDGRID.headers(raw)
    if case.sign == "twilio":
        params = case.data if isinstance(case.data, dict) else {}
        return {
            "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + case.path, params)
        }
    return {}


# -- the site ------------------------------------------------------------------------------


@dataclass
class Site:
    app: object
    observer: sqlite3.Connection  # a connection of the test's own, never writing
    examples: dict  # ids and a token of real rows, for {placeholders} in paths
    clients: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    forms: dict = field(default_factory=dict)
    nul_statements: list = field(default_factory=list)
    too_long: list = field(default_factory=list)  # values PostgreSQL would refuse for their column

    def row_counts(self):
        names = [
            row[0]
            for row in self.observer.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {name: self.observer.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0] for name in names}

    def data_version(self):
        """Changes whenever another connection commits a write to the file."""
        return self.observer.execute("PRAGMA data_version").fetchone()[0]

    def log_in(self, client):
        token = self.csrf(client, "/login", fresh=True)
        response = client.post("/login", data={"email": ADMIN[0], "password": ADMIN[1], "csrf_token": token})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        self.csrf(client, "/opt-outs/", fresh=True)

    def filled_form(self, who, page_url, action):
        """The form posting to ``action`` as ``page_url`` shows it (read once; an empty
        field a save needs gets a plain value)."""
        key = (who, page_url, action)
        if key not in self.forms:
            page_url, action = page_url.format(**self.examples), action.format(**self.examples)
            page = self.clients[who].get(page_url).get_data(as_text=True)
            values = filled_form(page, action, page_url.split("?")[0])
            for name, plain in PLAIN_VALUES.items():
                if name in values and not values[name]:
                    values[name] = plain
            self.forms[key] = values
        return self.forms[key]

    def csrf(self, client, url=None, fresh=False):
        """The visitor's CSRF token (one per session, valid for every form)."""
        if fresh or id(client) not in self.tokens:
            page = client.get(url or "/login").get_data(as_text=True)
            self.tokens[id(client)] = CSRF_RE.search(page).group(1)
        return self.tokens[id(client)]


@pytest.fixture(scope="module")
def site(migrated_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("no500")
    db_file = folder / "site.db"
    shutil.copy(migrated_db, db_file)
    clock = FakeClock(parse("2026-11-20T12:00:00Z"))
    app = create_app(make_config(folder, db_file, CLOCK=clock, **SITE_CONFIG))
    with app.app_context():
        create_admin(*ADMIN, clock())
        seed_demo(clock(), orders=20, days=6)
        db.session.commit()
        open_request, for_video = db.session.scalars(
            select(TestimonialRequest).where(TestimonialRequest.status == "sent").order_by(TestimonialRequest.id)
        ).all()[:2]
        examples = {
            "campaign": db.session.scalar(select(Campaign.id).where(Campaign.status == "active")),
            "template": db.session.scalar(select(MessageTemplate.id)),
            "request": db.session.scalar(select(TestimonialRequest.id).order_by(TestimonialRequest.status != "failed")),
            "testimonial": db.session.scalar(select(Testimonial.id)),
            "optout": db.session.scalar(select(OptOut.id)),
            "token": open_request.token,
        }
        assert all(examples.values()), examples
        engine = db.engine
    observer = sqlite3.connect(db_file, isolation_level=None)
    site = Site(app, observer, examples)

    def spot_nul(_conn, _cursor, statement, parameters, _context, _many):
        if has_nul(statement) or has_nul(parameters):
            site.nul_statements.append(statement)

    event.listen(engine, "before_cursor_execute", spot_nul)

    def spot_too_long(mapper, _connection, target):
        site.too_long.extend(values_too_big(mapper, target))

    for hook in ("before_insert", "before_update"):
        event.listen(db.Model, hook, spot_too_long, propagate=True)
    site.clients = {"anonymous": app.test_client(), "admin": app.test_client()}
    site.log_in(site.clients["admin"])
    site.csrf(site.clients["anonymous"], "/login")
    site.examples["video"] = submit_video(site, for_video.token)
    with app.app_context():  # an approved one with a video: the public pages and media have something to show
        apply_action("approve", [site.examples["video"]], clock())
        db.session.commit()
        site.examples["public"] = db.session.get(Testimonial, site.examples["video"]).public_id
    site.examples["upload"] = start_upload(site, open_request.token)
    yield site
    event.remove(engine, "before_cursor_execute", spot_nul)
    for hook in ("before_insert", "before_update"):
        event.remove(db.Model, hook, spot_too_long)
    observer.close()
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class FormReader(HTMLParser):
    """The fields of each POST <form> on a page with the values a browser would submit."""

    def __init__(self):
        super().__init__()
        self.forms, self.current, self.select, self.textarea = [], None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.current = (attrs.get("action") or "", {})
            if (attrs.get("method") or "get").lower() == "post":
                self.forms.append(self.current)
        elif self.current is None:
            return
        elif tag == "input" and attrs.get("name") and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") not in ("checkbox", "radio") or "checked" in attrs:
                self.current[1][attrs["name"]] = attrs.get("value") or ("y" if attrs.get("type") == "checkbox" else "")
        elif tag == "select":
            self.select = attrs.get("name")
        elif tag == "option" and self.select:
            if self.select not in self.current[1] or "selected" in attrs:
                self.current[1][self.select] = attrs.get("value", "")
        elif tag == "textarea":
            self.textarea = attrs.get("name")
            self.current[1][self.textarea] = ""

    def handle_endtag(self, tag):
        if tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None
        elif tag == "form":
            self.current = None

    def handle_data(self, data):
        if self.textarea and self.current is not None:
            self.current[1][self.textarea] += data.removeprefix("\n") if not self.current[1][self.textarea] else data


def filled_form(page, action, page_url):
    reader = FormReader()
    reader.feed(page)
    for target, values in reader.forms:
        if (target or page_url) == action:
            values.pop("csrf_token", None)
            return values
    raise AssertionError(f"no form posting to {action} on {page_url}: {[f[0] for f in reader.forms]} {page[:3000]}")


def values_too_big(mapper, row):
    """Values SQLite stores but PostgreSQL refuses (a 500 there): text longer than its
    String(n), numbers with more digits than their Numeric(p, s)."""
    for column in mapper.columns:
        value = getattr(row, mapper.get_property_by_column(column).key, None)
        kind = column.type
        if isinstance(kind, String) and kind.length and isinstance(value, str) and len(value) > kind.length:
            yield f"{column.table.name}.{column.name}: {len(value)} characters, String({kind.length})"
        if isinstance(kind, Numeric) and kind.precision and isinstance(value, Decimal | int | float):
            limit = 10 ** (kind.precision - (kind.scale or 0))
            if not abs(value) < limit:
                yield f"{column.table.name}.{column.name}: {value}, Numeric({kind.precision}, {kind.scale})"


def has_nul(value):
    if isinstance(value, str | bytes):
        return ("\x00" if isinstance(value, str) else b"\x00") in value
    if isinstance(value, dict):
        return any(has_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_nul(v) for v in value)
    return False


MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 8


def submit_video(site, token):
    """A testimonial with a video, through the customer's form (the demo has text only)."""
    client = site.clients["anonymous"]
    response = client.post(
        f"/r/{token}",
        content_type="multipart/form-data",
        data={
            "csrf_token": site.csrf(client),
            "consent": "yes",
            "text": "",
            "video": (io.BytesIO(MP4), "clip.mp4", "video/mp4"),
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    with site.app.app_context():
        return db.session.scalar(select(Testimonial.id).where(Testimonial.video_key.is_not(None)))


def start_upload(site, token):
    """An unfinished resumable upload on the open link (16 of 100 bytes arrived)."""
    client = site.clients["anonymous"]
    created = client.post(f"/r/{token}/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "100"})
    assert created.status_code == 201, created.get_data(as_text=True)
    upload_id = created.headers["Location"].rsplit("/", 1)[-1]
    sent = client.patch(
        f"/r/{token}/uploads/{upload_id}",
        data=MP4[:16],
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert sent.status_code == 204, sent.get_data(as_text=True)
    return upload_id


def video_cases():
    """Range and validator headers on the video player and download (206 / 416, never 500)."""
    for path in ("/testimonials/{video}/video", "/testimonials/{video}/download", "/media/{public}/video"):
        for name, value in (
            ("Range", "bytes=abc"),
            ("Range", "bytes=99999999999999999999-"),
            ("Range", "bytes=5-1"),
            ("Range", "bytes=-0"),
            ("Range", "bytes=0-1,2-3," * 500),
            ("Range", "items=0-1"),
            ("If-Range", "ünïcødé"),
            ("If-Modified-Since", "2026-13-45"),
            ("If-None-Match", "x" * 10_000),
            ("If-Modified-Since", "Sun, 99 Xyz 99999 99:99:99 GMT"),
        ):
            yield Case("GET", path, f"{name}: {value[:24]}", headers=((name, value),), visitors=("admin",))


def request_kwargs(site, who, case):
    """What the test client sends: the case's input plus a valid CSRF token and signature."""
    headers = dict(case.headers)
    kwargs = {"method": case.method, "headers": headers}
    data = case.data
    if case.form_page:
        data = {**site.filled_form(who, case.form_page, case.path), **data}
    if case.csrf:
        token = site.csrf(site.clients[who])
        headers["X-CSRFToken"] = token
        if isinstance(data, dict):
            data = {**data, "csrf_token": token}
        elif isinstance(data, bytes) and case.content_type == "application/x-www-form-urlencoded":
            data = f"csrf_token={token}&".encode() + data
    if case.what == "video of a wrong type":
        data = {
            "csrf_token": headers["X-CSRFToken"],
            "consent": "yes",
            "video": (io.BytesIO(b"#!/bin/sh\necho hi\n"), "../../evil.sh", "text/x-shellscript"),
        }
    if data is not None:
        kwargs["data"] = data
    if case.json is not None:
        kwargs["json"] = case.json
    if case.content_type is not None:
        kwargs["content_type"] = case.content_type
    if case.sign:
        raw = data if isinstance(data, bytes) else json.dumps(case.json).encode() if case.json is not None else b""
        headers.update(sign(case, raw))
    if case.query is not None:
        kwargs["query_string"] = case.query
    return kwargs


def check(site, who, case):
    before, version = site.row_counts(), site.data_version()
    site.nul_statements.clear()
    site.too_long.clear()
    response = site.clients[who].open(case.path.format(**site.examples), **request_kwargs(site, who, case))
    text = response.get_data().decode("utf-8", "replace")
    response.close()
    where = f"{who} {case.label()} → {response.status_code}"

    assert response.status_code < 500, f"{where}: {text[:800]}"
    assert "Traceback (most recent call last)" not in text, where
    assert_security_headers(response, where)
    if case.path.startswith(JSON_APIS) and case.method not in ("HEAD", "OPTIONS"):
        assert response.is_json or response.mimetype == "text/xml", f"{where}: a JSON API answered {text[:300]}"
    if response.status_code >= 400 and case.method != "HEAD":
        if case.path.startswith(JSON_APIS):
            assert response.is_json, f"{where}: a JSON API answered {response.mimetype}: {text[:300]}"
            message = response.get_json().get("error")
            assert isinstance(message, str) and message.strip(), f"{where}: no error message in {text[:300]}"
        elif response.mimetype == "text/plain" and "/uploads" in case.path:  # the tus endpoints
            assert response.headers.get("Tus-Resumable") == "1.0.0", f"{where}: a tus answer without Tus-Resumable"
            assert text.strip(), f"{where}: a tus refusal without a reason"
        elif response.is_json:  # a page asked for with Accept: application/json
            assert response.get_json().get("error"), f"{where}: no error message in {text[:300]}"
        else:
            assert response.mimetype == "text/html", f"{where}: answered {response.mimetype}"
            assert site.app.config["SHOP_NAME"] in text, f"{where}: not the app's page: {text[:300]}"
        assert site.row_counts() == before, f"{where}: refused, but rows were added or removed"
        assert site.data_version() == version, f"{where}: refused, but the database was written"
    assert not site.nul_statements, f"{where}: a NUL reached SQL: {site.nul_statements[0][:200]}"
    assert not site.too_long, f"{where}: PostgreSQL would refuse {site.too_long}"


def assert_security_headers(response, where):
    """Every answer, refusals and error pages included (issue 9)."""
    headers = response.headers
    csp = headers.get("Content-Security-Policy", "")
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert "default-src" in directives, where
    assert "unsafe-inline" not in directives.get("script-src", directives["default-src"]), where
    assert headers.get("X-Content-Type-Options") == "nosniff", where
    assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where
    assert "frame-ancestors" in csp, where
    if "frame-ancestors 'none'" in csp:
        assert headers.get("X-Frame-Options") == "DENY", where


def tidy(site, who):
    """Keep the visitor as they were: logged in (admin), no flash messages piling up."""
    client = site.clients[who]
    with client.session_transaction() as session:
        session.pop("_flashes", None)
        logged_in = "_user_id" in session
    if who == "admin" and not logged_in:
        site.log_in(client)


DASHBOARD_CASES = list(dashboard_cases())
WEBHOOK_CASES = list(webhook_cases())


def sent_by_visitors(cases):
    return [pytest.param(who, case, id=f"{who} {case.label()}") for case in cases for who in case.visitors]


@pytest.mark.parametrize(("who", "case"), sent_by_visitors(DASHBOARD_CASES))
def test_pages_and_forms_refuse_hostile_input_cleanly(site, who, case):
    try:
        check(site, who, case)
    finally:
        tidy(site, who)


@pytest.mark.parametrize(("who", "case"), sent_by_visitors(WEBHOOK_CASES))
def test_webhooks_refuse_hostile_input_cleanly(site, who, case):
    try:
        check(site, who, case)
    finally:
        tidy(site, who)


def test_every_route_and_method_has_cases():
    covered = {(case.endpoint, case.method) for case in DASHBOARD_CASES + WEBHOOK_CASES}
    missing = [
        (rule.endpoint, method) for rule in RULES for method in rule.methods if (rule.endpoint, method) not in covered
    ]
    assert not missing


def test_tables_name_real_endpoints():
    endpoints = {rule.endpoint for rule in RULES}
    named = set(QUERY_PARAMS) | set(VALID_ACTION) | ACT_ON_TOKEN_ALONE
    assert named <= endpoints, named - endpoints


@pytest.mark.parametrize(
    "args",
    [
        ["requests", "show", "99999999999999999999"],
        ["requests", "retry", "99999999999999999999"],
        ["requests", "cancel", "99999999999999999999"],
        ["requests", "list", "--campaign", "99999999999999999999"],
        ["outbox", "list", "--request", "99999999999999999999"],
        ["campaigns", "update", "99999999999999999999", "--name", "x"],
        ["campaigns", "pause", "99999999999999999999"],
        ["campaigns", "archive", "0"],
    ],
    ids=" ".join,
)
def test_commands_refuse_ids_past_a_database_integer(runner, args):
    result = runner.invoke(args=args)
    assert result.exit_code == 2, result.output
    assert "is not in the range" in result.output and "Traceback" not in result.output


def test_an_error_page_leads_a_logged_in_merchant_back_to_the_dashboard(logged_in, client):
    page = logged_in.get("/requests/99999")
    assert page.status_code == 404
    assert 'href="/">Back to the dashboard' in page.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": CSRF_RE.search(logged_in.get("/").get_data(as_text=True)).group(1)})
    assert "Back to the dashboard" not in client.get("/r/no-such-token").get_data(as_text=True)
