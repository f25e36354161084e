"""Adapters to other services' internal APIs."""
