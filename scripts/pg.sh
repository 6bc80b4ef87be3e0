#!/usr/bin/env bash
# Local PostgreSQL 15 for development, tests and the default run.
#   scripts/pg.sh start [--fast]   idempotent; --fast turns fsync off (tests only)
#   scripts/pg.sh stop | status | url
# The cluster lives under .data/pg (git-ignored), is run by the `postgres` OS user (initdb and
# pg_ctl refuse root), listens on 127.0.0.1:54329 only, and has role and database `actorsim`.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=${ACTORSIM_PG_PORT:-54329}
datadir="$root/.data/pg"
sockdir="$root/.data/pg-socket"
logfile="$root/.data/pg.log"
role=actorsim
db=actorsim

die() { echo "pg.sh: $*" >&2; exit 3; }

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

find_bindir() {
  local d
  for d in /usr/lib/postgresql/15/bin "$(pg_config --bindir 2>/dev/null || true)"; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  return 1
}

ensure_installed() {
  if ! bindir=$(find_bindir); then
    [ "$(id -u)" = 0 ] || die "PostgreSQL 15 is not installed and installing it needs root (apt-get install postgresql-15)"
    echo "pg.sh: installing postgresql-15 with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq postgresql-15 >/dev/null || die "apt-get install postgresql-15 failed"
    bindir=$(find_bindir) || die "postgresql-15 installed but initdb/pg_ctl not found"
  fi
  id postgres >/dev/null 2>&1 || die "the postgres OS user is missing (it comes with the postgresql-15 package)"
}

url() { echo "Host=127.0.0.1;Port=$port;Username=$role;Password=$role;Database=$db"; }

is_running() { [ -f "$datadir/postmaster.pid" ] && as_postgres "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; }

start() {
  local fast=0
  [ "${1:-}" = "--fast" ] && fast=1
  ensure_installed
  mkdir -p "$root/.data" "$sockdir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$root/.data" "$sockdir"; fi
  # The data directory's parents must be traversable by the postgres user.
  if [ "$(id -u)" = 0 ]; then
    local d="$root"
    while [ "$d" != "/" ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  fi
  if [ ! -f "$datadir/PG_VERSION" ]; then
    as_postgres "$bindir/initdb" -D "$datadir" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --no-sync -E UTF8 --locale=C.UTF-8 >/dev/null || die "initdb failed"
    cat >>"$datadir/postgresql.conf" <<CONF
# --- actorsim ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 200
CONF
    echo "host all all 127.0.0.1/32 scram-sha-256" >"$datadir/pg_hba.conf"
    echo "local all postgres trust" >>"$datadir/pg_hba.conf"
  fi
  if is_running; then
    echo "pg.sh: already running on 127.0.0.1:$port"
  else
    local opts=""
    [ $fast = 1 ] && opts="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_postgres "$bindir/pg_ctl" -D "$datadir" -l "$logfile" -w -t 60 -o "$opts" start >/dev/null \
      || { tail -20 "$logfile" >&2 || true; die "pg_ctl start failed (log: $logfile)"; }
    echo "pg.sh: started on 127.0.0.1:$port$([ $fast = 1 ] && echo ' (fast: fsync off)')"
  fi
  ensure_role_and_db
}

psql_admin() { as_postgres "$bindir/psql" -h "$sockdir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

ensure_role_and_db() {
  if [ "$(psql_admin -c "select 1 from pg_roles where rolname='$role'")" != 1 ]; then
    psql_admin -c "create role $role login password '$role' createdb" >/dev/null || die "create role failed"
  fi
  # A role with no rights of its own, for the tests of a role that may only read the schema (its owner
  # grants it SELECT): that such a role can list, summarise, export and replay runs.
  if [ "$(psql_admin -c "select 1 from pg_roles where rolname='${role}_reader'")" != 1 ]; then
    psql_admin -c "create role ${role}_reader login password '${role}_reader'" >/dev/null || die "create role failed"
  fi
  if [ "$(psql_admin -c "select 1 from pg_database where datname='$db'")" != 1 ]; then
    psql_admin -c "create database $db owner $role" >/dev/null || die "create database failed"
  fi
  # The journal's writer session skips the per-event foreign-key check of mt_events, whose rows'
  # streams its own statement makes (MartenJournal.SkipForeignKeyChecks); the role needs the right.
  psql_admin -c "grant set on parameter session_replication_role to $role" >/dev/null || die "grant failed"
}

stop() {
  bindir=$(find_bindir) || { echo "pg.sh: not installed"; return 0; }
  if is_running; then
    as_postgres "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null && echo "pg.sh: stopped"
  else
    echo "pg.sh: not running"
  fi
}

status() {
  bindir=$(find_bindir) || { echo "pg.sh: not installed"; return 1; }
  if is_running; then echo "pg.sh: running on 127.0.0.1:$port"; else echo "pg.sh: not running"; return 1; fi
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  url) url ;;
  *) echo "usage: scripts/pg.sh start [--fast] | stop | status | url" >&2; exit 2 ;;
esac
