"""Persistence of coupon_service."""
