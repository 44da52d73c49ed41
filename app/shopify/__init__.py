"""Shopify as an order source: ``POST /webhooks/shopify`` (see docs/shopify.md)."""
