"""gateway: the one public entry point; forwards /api/v1 routes to the services."""
