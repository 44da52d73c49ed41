"""What the merchant does to campaigns: create, edit (the pending requests are replanned),
pause, resume, archive (the pending requests are cancelled); the Campaigns screen and
``flask campaigns``. Above app.lifecycle, whose requests it steers; the campaigns
themselves (models, messages) are app.campaigns, which the sending engine reads."""
