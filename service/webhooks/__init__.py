"""Notifications to an operator's endpoint: queued with what raised them, delivered signed by the
workers, retried with backoff, logged."""
