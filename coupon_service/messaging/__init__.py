"""Kafka consumers: saga commands and the user.registered projection."""
