#!/bin/bash
# Runs once, on the first start of the postgres:15 container with an empty data
# volume (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
# Creates one database per service; the names match deploy/services.toml.
set -euo pipefail

APP_DATABASES="${APP_DATABASES:-balance catalog coupon orders ranking}"

for db in $APP_DATABASES; do
    echo "init-databases: ensuring database $db"
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        --set=db="$db" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
done
