"""The platform package shared by every service: infrastructure only, no business rules.

- ``config``: validated per-service settings (pydantic-settings, one env prefix per service).
- ``logging``: JSON logs that carry the request id.
- ``web``: aiohttp app factory pieces (problem+json, request id, health, metrics, OpenAPI).
- ``db``: asyncpg pool, migration runner, unit of work, transactional outbox and inbox.
- ``messaging``: message envelope, Kafka producer and batch consumer, topic names.
- ``events``: the pydantic schemas of every message the services exchange.
"""
