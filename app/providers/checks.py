"""Provider checks (spec §9, the runbook): prove each channel's credentials with a harmless call.

``check_providers(app)`` is what ``flask providers check`` prints and what the dashboard's
"Check providers" button can show; it never raises.
"""

import logging

from app.clock import isoformat, now
from app.providers.base import ProviderError, get_provider

log = logging.getLogger("app.providers")

CHANNELS = ("email", "sms")


def check_providers(app, channels=CHANNELS):
    """One dict per channel: channel, provider, ok, detail, code, transient, checked_at.

    ``transient`` marks a failure that may pass on its own (rate limit, outage, network);
    otherwise a failed check needs the merchant to fix the configuration or the account.
    """
    with app.app_context():
        return [check_channel(app, channel) for channel in channels]


def check_channel(app, channel):
    name = app.config["EMAIL_PROVIDER" if channel == "email" else "SMS_PROVIDER"]
    result = {
        "channel": channel,
        "provider": name,
        "ok": False,
        "detail": "",
        "code": None,
        "transient": False,
        "checked_at": isoformat(now()),
    }
    try:
        result["detail"] = get_provider(channel, app).check()
        result["ok"] = True
    except ProviderError as exc:
        result.update(detail=exc.message, code=exc.code, transient=exc.retryable)
    except ValueError as exc:  # unknown provider name, or one that cannot carry this channel
        result.update(detail=str(exc), code="config")
    except Exception as exc:  # a check must report, never crash the page or command
        log.exception("provider check %s/%s raised unexpectedly", channel, name)
        result.update(detail=f"unexpected error: {exc!r}", code="unexpected", transient=True)
    log.info("provider check %s/%s: %s %s", channel, name, "ok" if result["ok"] else "FAILED", result["detail"])
    return result
