#!/usr/bin/env bash
# First start of the database only: the anju database, its owner role (the hub's) and a read-only role for
# Grafana that may read the views in schema grafana and no table. The SQL is in the .psql files beside
# this one (the image's entrypoint skips them; tests/deploy/test_grafana_role.py runs them against a real
# PostgreSQL). Passwords come from the secret files named by ANJU_DB_PASSWORD_FILE and
# GRAFANA_DB_PASSWORD_FILE (or, failing those, ANJU_DB_PASSWORD and GRAFANA_DB_PASSWORD) and are passed as
# psql variables (quoted by psql).
set -euo pipefail
here="$(dirname "${BASH_SOURCE[0]}")"
secret() {  # secret NAME: the content of the file $NAME_FILE, else the variable $NAME
  local file_var="${1}_FILE"
  if [ -n "${!file_var:-}" ]; then tr -d '\n' < "${!file_var}"; else printf '%s' "${!1:?set $1 or ${1}_FILE}"; fi
}
ANJU_DB_PASSWORD="$(secret ANJU_DB_PASSWORD)"
GRAFANA_DB_PASSWORD="$(secret GRAFANA_DB_PASSWORD)"
names=(-v anju_role=anju -v grafana_role=grafana_reader -v anju_db=anju)
psql -X -v ON_ERROR_STOP=1 --username postgres --dbname postgres "${names[@]}" \
  -v anju_pw="$ANJU_DB_PASSWORD" -v grafana_pw="$GRAFANA_DB_PASSWORD" -f "$here/roles.psql"
psql -X -v ON_ERROR_STOP=1 --username postgres --dbname anju -c 'CREATE EXTENSION IF NOT EXISTS timescaledb'
# Tables and the grafana views are created later by the hub (anju.hub.storage.ensure_schema) as role anju.
psql -X -v ON_ERROR_STOP=1 --username postgres --dbname anju "${names[@]}" -f "$here/grafana-reader.psql"
