"""Test support: where the real PostgreSQL and Kafka come from, and helpers to use them."""
