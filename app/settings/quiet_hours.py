"""The shop's quiet hours (Settings): a time of day when no message goes out, on any
channel of any campaign, on top of each campaign's own send windows (docs/send-windows.md)."""

from app.lifecycle import policy


def quiet_hours_window(text):
    """Quiet hours "21:00-08:00" → the SendWindow when messages may go (08:00-21:00); None
    when there are none. Raises policy.WindowInvalid for text that is not HH:MM-HH:MM."""
    if text is None or not str(text).strip() or str(text).strip().lower() in ("none", "any"):
        return None
    quiet = policy.SendWindow.parse(text)
    if quiet is None:
        return None
    if quiet.start == quiet.end % 1440:
        raise policy.WindowInvalid("quiet hours all day long would never send anything")
    return policy.SendWindow(quiet.end % 1440, quiet.start or 1440)
