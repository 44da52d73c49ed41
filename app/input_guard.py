"""Input no view can use, refused before it reaches the database (a 4xx, never a 500).

- Numbers beyond a database integer: SQLite raises OverflowError on 2**63 and up,
  PostgreSQL a DataError. ``<int:…>`` in a URL stops there (a bigger id is a 404), and
  ``page`` / id query arguments are read with ``page_number`` / ``database_id``.
- NUL characters: PostgreSQL refuses them in text, and no field of ours has a use for one.
  The URL and the query string are checked for every request, dashboard forms before
  their view runs (webhooks and the customer's upload form check their own bodies).
"""

from flask import abort, request
from werkzeug.routing import IntegerConverter

MAX_ID = 2**63 - 1  # the largest BIGINT / SQLite INTEGER
MAX_PAGE = 1_000_000  # far past any list's end; keeps OFFSET well inside an integer


class DatabaseIntConverter(IntegerConverter):
    """``<int:…>`` that matches only ids a database integer can hold."""

    def __init__(self, url_map, fixed_digits=0, min=None, max=MAX_ID, signed=False):  # noqa: A002
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def database_id(text):
    """An id from a query argument (``type=database_id``): ValueError when it cannot be one."""
    value = int(text)
    if not 0 < value <= MAX_ID:
        raise ValueError(f"{text!r} is not an id")
    return value


def page_number(args, name="page"):
    """The page a list is asked for: 1 for anything that is not a page number."""
    number = args.get(name, 1, type=int) or 1
    return min(max(number, 1), MAX_PAGE)


NUL_MESSAGE = "The {where} contains a NUL character (%00), which no field accepts. Nothing was changed."


def refuse_nul_in_url():
    """Before every request: the path and the query string."""
    if "\x00" in request.path:
        abort(400, description=NUL_MESSAGE.format(where="address"))
    if any("\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)):
        abort(400, description=NUL_MESSAGE.format(where="query string"))


def refuse_nul_in_form():
    """Before a dashboard or login view: the posted form (already parsed by the CSRF check)."""
    if request.method == "POST" and any(
        "\x00" in key or "\x00" in value for key, value in request.form.items(multi=True)
    ):
        abort(400, description=NUL_MESSAGE.format(where="form"))


def unstorable_text(document, path="body"):
    """The path of the first text in a decoded JSON document or form that no database can
    store, or None: a NUL character (PostgreSQL refuses it) or an unpaired surrogate
    (``"\\ud800"`` in JSON decodes to one; it is not UTF-8). "" when it is at the top."""
    if isinstance(document, str):
        return path if "\x00" in document or not _utf8_safe(document) else None
    if isinstance(document, dict):
        items = document.items()
    elif isinstance(document, list):
        items = ((f"[{index}]", value) for index, value in enumerate(document))
    else:
        return None
    for key, value in items:
        listed = isinstance(key, str) and key.startswith("[")
        if isinstance(key, str) and not listed and unstorable_text(key) is not None:
            return path
        child = f"{path}{key}" if listed else f"{path}.{key}" if path else str(key)
        found = unstorable_text(value, child)
        if found is not None:
            return found
    return None


def _utf8_safe(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
