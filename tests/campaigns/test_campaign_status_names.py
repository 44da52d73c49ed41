"""A campaign's statuses are named in one place, app/campaigns/models.py (DRAFT, ACTIVE,
PAUSED, ARCHIVED and the sets built from them); everything else in app/ uses those names,
so a new status or a renamed one cannot be missed in a comparison somewhere.

Python files are read with ``ast`` (a string constant that is exactly a status word);
templates by their Jinja expressions and statements (``{{ … }}``, ``{% … %}``), where a
quoted status word would be a comparison or a mapping the model's names should make."""

import ast
import re
from pathlib import Path

from app.campaigns.models import CAMPAIGN_STATUSES

APP = Path(__file__).resolve().parents[2] / "app"
MODEL = APP / "campaigns" / "models.py"
# The same word meaning something else, with why.
OTHER_MEANINGS = {
    ("providers/twilio.py", "active"): "the status Twilio reports for an account, not a campaign's",
}
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
QUOTED = re.compile(r"""(['"])(""" + "|".join(CAMPAIGN_STATUSES) + r""")\1""")


def python_literals(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in CAMPAIGN_STATUSES:
            yield node.lineno, node.value


def template_literals(path):
    text = path.read_text(encoding="utf-8")
    for block in JINJA.finditer(text):
        for match in QUOTED.finditer(block.group(0)):
            yield text.count("\n", 0, block.start() + match.start()) + 1, match.group(2)


def found():
    for path in sorted(APP.rglob("*")):
        if path == MODEL or path.suffix not in (".py", ".html"):
            continue
        literals = python_literals(path) if path.suffix == ".py" else template_literals(path)
        for line, word in literals:
            where = path.relative_to(APP).as_posix()
            if (where, word) not in OTHER_MEANINGS:
                yield f"app/{where}:{line}: {word!r}"


def test_no_campaign_status_is_spelled_outside_the_campaign_model():
    assert list(found()) == []


def test_the_search_sees_both_kinds_of_file(tmp_path):
    """The two readers find what they are for (so an empty result above means something)."""
    code = tmp_path / "x.py"
    code.write_text('if campaign.status == "paused":\n    label = f"campaign {name} paused"\n')
    page = tmp_path / "x.html"
    page.write_text("""<li class="active">{% if c.status == 'archived' %}{{ {"draft": 1}[s] }}{% endif %}</li>""")
    assert list(python_literals(code)) == [(1, "paused")]
    assert list(template_literals(page)) == [(1, "archived"), (1, "draft")]
    # The model itself still spells them, once: the names are made there.
    assert {word for _line, word in python_literals(MODEL)} == set(CAMPAIGN_STATUSES)
