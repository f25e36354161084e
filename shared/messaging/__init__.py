"""Kafka messaging: envelope, topics, producer, batch consumer."""
