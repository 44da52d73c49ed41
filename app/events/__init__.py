"""Provider event webhooks (SendGrid events, Twilio status and inbound SMS): step 6 of the
lifecycle, and the opt-outs customers send through their email client or phone."""
