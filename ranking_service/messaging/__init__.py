"""Kafka consumers of ranking_service."""
