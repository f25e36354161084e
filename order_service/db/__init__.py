"""Persistence of order_service."""
