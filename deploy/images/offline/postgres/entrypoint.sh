#!/bin/sh
# The part of the official postgres image's entrypoint that FLIP's compose files rely on: on the first start
# an empty PGDATA is initialised with POSTGRES_USER (default postgres) as superuser, its password from
# POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD (scram-sha-256 over TCP), and the database POSTGRES_DB
# (default: the user's name); then postgres runs as PID 1, as the postgres user, listening on every interface.
set -eu
if [ "${1:-}" != postgres ]; then exec "$@"; fi

# Read as root, as the official image does, so the secret file need not be readable by the postgres user.
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
  POSTGRES_PASSWORD=$(cat "$POSTGRES_PASSWORD_FILE")
  export POSTGRES_PASSWORD
  unset POSTGRES_PASSWORD_FILE
fi

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 0700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  user=${POSTGRES_USER:-postgres}
  db=${POSTGRES_DB:-$user}
  password=${POSTGRES_PASSWORD:-}
  if [ -z "$password" ]; then
    echo "postgres: set POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD) to initialise $PGDATA" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  printf '%s' "$password" > "$pwfile"
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 -D "$PGDATA" >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    createdb --username="$user" "$db"
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  echo "postgres: initialised $PGDATA (superuser $user, database $db)"
fi
unset POSTGRES_PASSWORD
exec "$@"
