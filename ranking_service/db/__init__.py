"""Persistence of ranking_service."""
