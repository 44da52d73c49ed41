"""The outbox provider (the default: it stores every rendered message and sends nothing),
its stored messages, the Outbox screen and ``flask outbox list``."""
