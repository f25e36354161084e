"""Persistence of balance_service."""
