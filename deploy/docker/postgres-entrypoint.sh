#!/bin/bash
# Entrypoint of finestra/postgres: initdb on first start, then PostgreSQL in the foreground
# (exec, so it is PID 1's child of docker-init or PID 1 itself and gets the stop signal).
# Extra arguments go to postgres, e.g. `-c max_connections=200`.
set -euo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${PGPORT:=5432}"
: "${POSTGRES_USER:=finestra}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_LISTEN_ADDRESSES:=*}"

log() { printf '%s postgres-entrypoint: %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

if [[ $(id -u) == 0 ]]; then
  log "refusing to run as root; run as the postgres user (the image's default USER)"
  exit 1
fi
for name in "$POSTGRES_USER" "$POSTGRES_DB"; do
  [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]{0,62}$ ]] || { log "invalid role/database name: $name"; exit 1; }
done

if [[ ! -s $PGDATA/PG_VERSION ]]; then
  if [[ -z ${POSTGRES_PASSWORD:-} ]]; then
    log "POSTGRES_PASSWORD is empty: set it (first start initialises the database)"
    exit 1
  fi
  log "initialising $PGDATA (role $POSTGRES_USER, database $POSTGRES_DB)"
  mkdir -p "$PGDATA"
  chmod 0700 "$PGDATA"
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
         --auth-local=trust --auth-host=scram-sha-256 \
         --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  trap - EXIT
  # initdb's pg_hba.conf only admits 127.0.0.1/::1 over TCP: admit the container network
  # too (password required), since other containers connect over it.
  cat >>"$PGDATA/pg_hba.conf" <<HBA

# finestra/postgres: every other host authenticates with a password (scram-sha-256).
host    all             all             0.0.0.0/0               scram-sha-256
host    all             all             ::/0                    scram-sha-256
HBA
  cat >>"$PGDATA/postgresql.conf" <<CONF

# finestra/postgres
password_encryption = scram-sha-256
log_destination = 'stderr'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
CONF
  if [[ $POSTGRES_DB != postgres ]]; then
    # Single-user mode: no temporary server that a health check could mistake for ready.
    echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
      | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
  log "initialised"
fi

exec postgres -D "$PGDATA" -p "$PGPORT" \
  -c listen_addresses="$POSTGRES_LISTEN_ADDRESSES" \
  -c unix_socket_directories=/var/run/postgresql "$@"
