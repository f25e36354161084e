"""Persistence of catalog_service."""
