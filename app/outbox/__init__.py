"""The dashboard's view of the outbox provider's stored messages."""
