"""The Settings screen and saving it: a new time zone or new quiet hours replan the pending
sends (through app.campaign_admin). The settings as every part reads them: app.settings."""
