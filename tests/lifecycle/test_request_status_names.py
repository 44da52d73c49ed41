"""A request's statuses are named in one place, app/lifecycle/states.py (SCHEDULED, QUEUED,
SENT, CLICKED, SUBMITTED, FAILED, EXPIRED, CANCELLED and the sets built from them); the
rest of app/ compares, lists, labels and filters by those names (templates through the
``request_statuses`` global), so a renamed or new status cannot be missed somewhere.

The same words have other meanings in app/ (a timeline event "sent", a slot send's outcome
"failed", a Twilio status "sent"…), so the search looks for a status word where it is used
*as a status*:

Python (read with ``ast``):
- compared with something called ``status`` (``req.status == "sent"``, ``status != …``,
  ``… in ("sent", "clicked")``), or given to its ``in_``/``not_in``/``is_``…;
- given to ``status`` (``status="scheduled"`` in a call, ``{"status": …}``, ``x.status = …``,
  a column's ``default=`` on a ``status`` attribute, a ``status`` parameter's default);
- the key of a dict (a label or badge per status), a collection made only of status words
  (a hand-made copy of ``SENDABLE``), a name bound to a status word (a second ``FAILED``),
  or a ``status=<word>`` query string.
Templates (Jinja blocks, by regex): a comparison with ``….status``, a ``status=`` keyword, a
dict key, a collection of status words; and ``status=<word>`` in any URL of the page.

What is the same word with another meaning and cannot be told apart by its context is in
OTHER_MEANINGS below, each with why."""

import ast
import re
from pathlib import Path

from app.lifecycle.states import STATUSES

APP = Path(__file__).resolve().parents[2] / "app"
STATES = APP / "lifecycle" / "states.py"
WORDS = frozenset(STATUSES)

# (file under app/, the scope: innermost def/class, the name a module-level statement binds,
# or a template's {% set NAME %}) → why its status words are not request statuses.
OTHER_MEANINGS = {
    ("events/parsing.py", "SENT"): "the kinds of provider event (SENT, DELIVERED, OPENED, CLICKED, FAILED)",
    ("events/parsing.py", "TWILIO_KINDS"): "Twilio's MessageStatus values ('sent', 'failed') mapped to event kinds",
    ("intake/models.py", "OrderEvent.outcome"): "intake items' outcomes ('cancelled': the items an order "
    "cancellation stopped), reported per outcome",
    ("lifecycle/models.py", "SlotSend"): "a slot send's own statuses (SlotSend.SENDING, SENT, FAILED): the outcome "
    "of one message to a provider, not the request's status",
    ("lifecycle/templates/requests/detail.html", "EVENT_WORDS"): "timeline event types in words ('sent', "
    "'failed'… are event types there)",
    ("testimonials/processing.py", "process_due_videos"): "the video jobs' outcome counts ('failed': videos that could "
    "not be processed)",
}

STATUS_NAMES = {"status"}  # what a status is called when compared, given or filtered by
SQL_TESTS = {"in_", "not_in", "notin_", "is_", "is_not", "isnot", "is_distinct_from", "is_not_distinct_from"}
QUERY = re.compile(r"[?&]status=(" + "|".join(sorted(WORDS)) + r")\b")


def is_status(node):
    if isinstance(node, ast.Name):
        return node.id in STATUS_NAMES
    if isinstance(node, ast.Attribute):
        return node.attr in STATUS_NAMES
    if isinstance(node, ast.Subscript):  # row["status"]
        return isinstance(node.slice, ast.Constant) and node.slice.value in STATUS_NAMES
    return False


def words_in(node, *, deep=False):
    """Status-word constants: the node itself or a collection's items (or anywhere below)."""
    nodes = ast.walk(node) if deep else [node, *getattr(node, "elts", ())]
    return [n for n in nodes if isinstance(n, ast.Constant) and n.value in WORDS]


def python_findings(source):
    """(line, word, scope) for each status word used as a request status in ``source``."""
    tree = ast.parse(source)
    found = []

    def visit(node, scope, module_level):
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner = child.name if module_level else f"{scope}.{child.name}"
            elif module_level and isinstance(child, (ast.Assign, ast.AnnAssign)):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
                inner = names[0] if names else scope
            for hit in words_used(child):
                found.append((hit.lineno, hit.value, inner))
            defines = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            visit(child, inner, module_level and not defines)

    visit(tree, "<module>", True)
    return sorted(set(found))


def words_used(node):
    """The status words ``node`` itself uses as a request status (its children are visited
    on their own)."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        if any(is_status(o) for o in operands):
            return [w for o in operands if not is_status(o) for w in words_in(o)]
    if isinstance(node, ast.Call):
        func = node.func
        hits = []
        if isinstance(func, ast.Attribute) and func.attr in SQL_TESTS and is_status(func.value):
            hits += [w for a in node.args for w in words_in(a)]
        hits += [w for k in node.keywords if k.arg in STATUS_NAMES for w in words_in(k.value, deep=True)]
        return hits
    if isinstance(node, ast.Dict):
        hits = [k for k in node.keys if isinstance(k, ast.Constant) and k.value in WORDS]
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and key.value in STATUS_NAMES:
                hits += words_in(value, deep=True)
        return hits
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if node.value is None:
            return []
        if any(is_status(t) for t in targets):
            return words_in(node.value, deep=True)
        hits = []  # a name bound to a status word: FAILED = "failed", or A, B = "sent", "x"
        for target in targets:
            if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                hits += words_in(node.value)
            elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                hits += [
                    w
                    for t, v in zip(target.elts, node.value.elts, strict=False)
                    if isinstance(t, ast.Name)
                    for w in words_in(v)
                ]
        return hits
    if isinstance(node, ast.arguments):
        positional = [*node.posonlyargs, *node.args]
        pairs = [*zip(positional[len(positional) - len(node.defaults) :], node.defaults, strict=True)]
        pairs += [(a, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None]
        return [w for a, d in pairs if a.arg in STATUS_NAMES for w in words_in(d, deep=True)]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2:
        if all(isinstance(e, ast.Constant) and e.value in WORDS for e in node.elts):
            return list(node.elts)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if QUERY.search(node.value):
            return [_Word(node.lineno, QUERY.search(node.value).group(1))]
    return []


class _Word:
    def __init__(self, lineno, value):
        self.lineno, self.value = lineno, value


# -- templates ---------------------------------------------------------------------------------

JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
SET_NAME = re.compile(r"\{%-?\s*set\s+(\w+)")
_WORD = "|".join(sorted(WORDS))
QUOTED = rf"""(?:'(?:{_WORD})'|"(?:{_WORD})")"""
LISTED = rf"""(?:{QUOTED}|[(\[]\s*{QUOTED}(?:\s*,\s*{QUOTED})*\s*,?\s*[)\]])"""
STATUS_EXPR = r"(?<![\w'\"])status\b"  # status, r.status, req.status (not video_status, 'status')
TEMPLATE_USES = [
    re.compile(rf"{STATUS_EXPR}\s*(?:==|!=|\bnot\s+in\b|\bin\b)\s*(?P<x>{LISTED})"),  # r.status == 'failed'
    re.compile(rf"(?P<x>{QUOTED})\s*(?:==|!=)\s*(?:\w+\.)*status\b"),  # 'failed' == r.status
    re.compile(rf"{STATUS_EXPR}\s*=(?!=)\s*(?P<x>{QUOTED})"),  # url_for(…, status='failed')
    re.compile(rf"(?P<x>{QUOTED})\s*:"),  # {'failed': 'text-bg-danger', …}
    re.compile(rf"(?P<x>[(\[]\s*{QUOTED}(?:\s*,\s*{QUOTED})+\s*,?\s*[)\]])"),  # ('sent', 'clicked')
]


def template_findings(text):
    """(line, word, scope) for each status word used as a request status in a template."""
    found = set()

    def line(offset):
        return text.count("\n", 0, offset) + 1

    for block in JINJA.finditer(text):
        named = SET_NAME.match(block.group(0))
        scope = named.group(1) if named else "<page>"
        for pattern in TEMPLATE_USES:
            for use in pattern.finditer(block.group(0)):
                for word in re.findall(_WORD, use.group("x")):
                    found.add((line(block.start() + use.start("x")), word, scope))
    for query in QUERY.finditer(text):
        found.add((line(query.start()), query.group(1), "<page>"))
    return sorted(found)


def findings(root):
    for path in sorted(root.rglob("*")):
        if path.suffix not in (".py", ".html") or path == STATES:
            continue
        where = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        for line, word, scope in python_findings(text) if path.suffix == ".py" else template_findings(text):
            if (where, scope) not in OTHER_MEANINGS:
                yield f"app/{where}:{line} ({scope}): {word!r}"


def test_no_request_status_is_spelled_outside_the_state_machine():
    assert list(findings(APP)) == []


def test_every_other_meaning_is_still_there():
    """An allow-list entry whose code is gone would let a status literal back in there."""
    scopes = set()
    for where, _scope in OTHER_MEANINGS:
        path = APP / where
        text = path.read_text(encoding="utf-8")
        scopes |= {
            (where, s) for _l, _w, s in (python_findings(text) if path.suffix == ".py" else template_findings(text))
        }
    assert set(OTHER_MEANINGS) <= scopes


SELF_TEST = """
from app.lifecycle.models import TestimonialRequest as R
LABELS = {"failed": "needs your action"}
SENT = "sent"
def count(db, status="scheduled"):
    db.scalar(select(R.id).where(R.status == "scheduled"))
    db.scalar(select(R.id).where(R.status.in_(["sent", "clicked"])))
    db.execute(insert(R).values(status="queued"))
    rows = [r for r in rows if "expired" != r["status"]]
    req.status = "cancelled"
    done = ("submitted", "expired")
    link = "/requests?status=failed"
    # Other meanings of the words, not flagged:
    add_event(req.id, "sent", now)
    if e.type == "failed" or t.video_status == "failed" or campaign.status == "active":
        label = f"request {req.id} sent"
    return "failed"
"""
SELF_TEMPLATE = """
{% set CLASSES = {'scheduled': 'text-bg-secondary'} %}
<tr class="{{ 'row-failed' if r.status == 'failed' }}">{% if req.status in ('submitted', 'expired') %}x{% endif %}
<a href="{{ url_for('requests.index', status='clicked') }}">a</a><a href="/requests?status=queued">b</a>
{% if 'sent' != r.status %}{% endif %}
The request was sent; {{ e.type == 'failed' }} {{ t.video_status == 'failed' }} {{ r.status == request_statuses.FAILED }}
"""


def test_the_search_finds_each_use_and_only_those(tmp_path):
    """The rules on a small tree written here: each kind of use is found (so an empty result
    above means something), other meanings of the words are not, and the allow-list is by
    file and scope."""
    (tmp_path / "lifecycle").mkdir()
    (tmp_path / "lifecycle" / "queries.py").write_text(SELF_TEST)
    (tmp_path / "lifecycle" / "page.html").write_text(SELF_TEMPLATE)
    found = list(findings(tmp_path))
    assert found == [
        "app/lifecycle/page.html:2 (CLASSES): 'scheduled'",
        "app/lifecycle/page.html:3 (<page>): 'expired'",
        "app/lifecycle/page.html:3 (<page>): 'failed'",
        "app/lifecycle/page.html:3 (<page>): 'submitted'",
        "app/lifecycle/page.html:4 (<page>): 'clicked'",
        "app/lifecycle/page.html:4 (<page>): 'queued'",
        "app/lifecycle/page.html:5 (<page>): 'sent'",
        "app/lifecycle/queries.py:3 (LABELS): 'failed'",
        "app/lifecycle/queries.py:4 (SENT): 'sent'",
        "app/lifecycle/queries.py:5 (count): 'scheduled'",
        "app/lifecycle/queries.py:6 (count): 'scheduled'",
        "app/lifecycle/queries.py:7 (count): 'clicked'",
        "app/lifecycle/queries.py:7 (count): 'sent'",
        "app/lifecycle/queries.py:8 (count): 'queued'",
        "app/lifecycle/queries.py:9 (count): 'expired'",
        "app/lifecycle/queries.py:10 (count): 'cancelled'",
        "app/lifecycle/queries.py:11 (count): 'expired'",
        "app/lifecycle/queries.py:11 (count): 'submitted'",
        "app/lifecycle/queries.py:12 (count): 'failed'",
    ]
    # The state machine itself spells each status, once, where the names are made.
    assert sorted(w for _l, w, _s in python_findings(STATES.read_text(encoding="utf-8"))) == sorted(WORDS)
