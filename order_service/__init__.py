"""order_service: Orders and the orchestrated payment saga."""
