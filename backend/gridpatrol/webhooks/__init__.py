"""Outgoing webhooks: case events delivered to registered URLs from a durable outbox."""
