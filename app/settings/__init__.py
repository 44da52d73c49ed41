"""The shop's settings: name, logo, brand colour, sender, time zone, public address, quiet
hours and consent wording.

Environment variables (``config.py``) give every value its start and stay the way to
configure a deployment; a value saved on the Settings screen wins over them. Read the
settings through ``current_settings()`` — never ``app.config`` for these keys — so a change
on the screen applies at once, in every process (see ``app/settings/current.py``).
"""

from app.settings.current import Settings, current_settings, settings_context  # noqa: F401
