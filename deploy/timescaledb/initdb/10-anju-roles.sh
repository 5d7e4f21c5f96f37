#!/usr/bin/env bash
# First start of the database only: the anju database, its owner role and a read-only role for Grafana.
# Passwords come from the container environment and are passed as psql variables (quoted by psql).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
  -v anju_pw="$ANJU_DB_PASSWORD" -v grafana_pw="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE anju LOGIN PASSWORD :'anju_pw';
CREATE ROLE grafana_reader LOGIN PASSWORD :'grafana_pw';
CREATE DATABASE anju OWNER anju;
SQL
psql -v ON_ERROR_STOP=1 --username postgres --dbname anju <<'SQL'
CREATE EXTENSION IF NOT EXISTS timescaledb;
GRANT CONNECT ON DATABASE anju TO grafana_reader;
GRANT USAGE ON SCHEMA public TO grafana_reader;
-- Tables are created later by the hub (hub.storage.ensure_schema) as role anju.
ALTER DEFAULT PRIVILEGES FOR ROLE anju IN SCHEMA public GRANT SELECT ON TABLES TO grafana_reader;
SQL
