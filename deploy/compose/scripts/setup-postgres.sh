#!/bin/sh
# Creates Temporal's two databases in the compose Postgres and brings their
# schema to the admin-tools image's version (the server image's version).
# Safe to run again: existing databases are kept and only newer schema
# versions are applied.
set -eu

: "${SQL_PASSWORD:?SQL_PASSWORD is not set}"
echo 'waiting for PostgreSQL'
nc -z -w 10 "$POSTGRES_SEEDS" "$DB_PORT"

tool() {
  temporal-sql-tool --plugin "$DB" --ep "$POSTGRES_SEEDS" -p "$DB_PORT" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal visibility:temporal_visibility; do
  schema=${pair%%:*}
  db=${pair#*:}
  if tool --db "$db" setup-schema -v 0.0 >/dev/null 2>&1; then
    echo "database $db exists"
  else
    tool --db "$db" create
    tool --db "$db" setup-schema -v 0.0
  fi
  tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$schema/versioned"
done
echo 'Temporal schema is current'
