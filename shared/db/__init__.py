"""PostgreSQL infrastructure: pool, migrations, unit of work, transactional outbox and inbox."""
