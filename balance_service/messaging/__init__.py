"""Kafka side of balance_service: the saga's balance commands in, replies out (outbox)."""
