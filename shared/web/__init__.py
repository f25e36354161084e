"""aiohttp building blocks: problem+json errors, request ids, health, metrics, OpenAPI, input parsing."""
