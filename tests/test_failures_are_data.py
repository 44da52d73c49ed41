"""Failures are stored as fields and read as fields (docs/failures.md): nothing in app/
parses a failure sentence back, and provider error codes live in the provider modules.

The behaviour (the sentences each screen shows) is tested where the failures happen:
tests/lifecycle/test_failures.py, tests/intake/test_requests_log.py, tests/events/."""

import io
import tokenize
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app"
PROVIDER_MODULES = {APP / "providers" / "twilio.py", APP / "providers" / "sendgrid.py"}
# Fragments of the regular expressions that read failure sentences back (removed).
SENTENCE_PATTERNS = (
    "retryable|permanent",
    "\\(reported by",
    "bounce|dropped",
    "undelivered|failed",
    "template error: ",
)
TWILIO_CODES = {"20003", "20429", "21211", "21408", "21606", "21610", "21612", "21614", "30003", "30004", "30005"}


def tokens(path):
    text = path.read_text(encoding="utf-8")
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(text).readline)]


def python_files():
    files = sorted(APP.rglob("*.py"))
    assert len(files) > 50
    return files


def test_no_code_in_app_reads_a_failure_sentence_back():
    found = [
        (path.relative_to(APP), string)
        for path in python_files()
        for kind, string in tokens(path)
        if kind == tokenize.STRING
        and any(p in string for p in SENTENCE_PATTERNS)
        or kind == tokenize.NAME
        and string in ("split_last_error", "read_reason", "SEND_RESULT", "TWILIO_ERRORS")
    ]
    assert found == []


def test_twilio_error_codes_are_written_only_in_the_provider_module():
    found = [
        (path.relative_to(APP), string)
        for path in python_files()
        if path not in PROVIDER_MODULES
        for kind, string in tokens(path)
        if kind in (tokenize.NUMBER, tokenize.STRING) and string.strip("\"'") in TWILIO_CODES
    ]
    assert found == []
