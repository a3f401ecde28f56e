#!/usr/bin/env bash
# A throwaway PostgreSQL for the Dagster instance on one machine (rehearsal, CI): its own cluster in DIR,
# listening on 127.0.0.1 only, with the DAGSTER_PG_* settings deploy/dagster.yaml reads.
#
#   deploy/postgres_local.sh start DIR   # installs Debian's postgresql when missing (as root), initdb, start
#   deploy/postgres_local.sh stop DIR
#   deploy/postgres_local.sh status DIR
#
# Reads DAGSTER_PG_PORT, DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD, DAGSTER_PG_DB (DAGSTER_PG_HOST must be
# 127.0.0.1 or unset). In production use a managed Postgres instead (docs/deployment.md).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
action=$1
dir=$2

die() { echo "postgres_local: $*" >&2; exit 1; }

find_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n $d && -x $d/initdb ]]; then echo "$d"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
}

ensure_installed() {
  if [[ -n $(find_bindir) ]]; then return; fi
  [[ $(id -u) -eq 0 ]] || die "PostgreSQL is not installed; run as root (it installs Debian's 'postgresql' package) or install it yourself"
  echo "postgres_local: installing PostgreSQL (apt-get install postgresql)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  [[ -n $(find_bindir) ]] || die "apt-get installed postgresql but no initdb was found under /usr/lib/postgresql"
}

# initdb and the server refuse to run as root: as root, run them as the 'postgres' user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port=${DAGSTER_PG_PORT:-5432}
user=${DAGSTER_PG_USERNAME:-dagster}
db=${DAGSTER_PG_DB:-dagster}
host=${DAGSTER_PG_HOST:-127.0.0.1}
[[ $host == 127.0.0.1 || $host == localhost ]] || die "DAGSTER_PG_HOST is $host: this script only runs a server on 127.0.0.1"

case $action in
  start)
    [[ -n ${DAGSTER_PG_PASSWORD:-} ]] || die "set DAGSTER_PG_PASSWORD (the password the instance will use)"
    ensure_installed
    bin=$(find_bindir)
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ $(id -u) -eq 0 ]]; then
      chown postgres: "$dir"
      as_owner test -w "$dir" || die "$dir is not reachable by the 'postgres' user (a parent folder is private); use a folder under /tmp"
    fi
    if [[ ! -f $dir/data/PG_VERSION ]]; then
      pwfile=$dir/.pwfile
      (umask 077; printf '%s\n' "$DAGSTER_PG_PASSWORD" > "$pwfile")
      [[ $(id -u) -ne 0 ]] || chown postgres: "$pwfile"
      as_owner "$bin/initdb" -D "$dir/data" -U "$user" --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 \
        --no-instructions >"$dir/initdb.log" 2>&1 || { rm -f "$pwfile"; cat "$dir/initdb.log" >&2; die "initdb failed"; }
      rm -f "$pwfile"
    fi
    mkdir -p "$dir/run"
    [[ $(id -u) -ne 0 ]] || chown postgres: "$dir/run"
    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      echo "postgres_local: already running in $dir" >&2
    else as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run" start >/dev/null \
      || { tail -n 20 "$dir/postgres.log" >&2; die "the server did not start (port $port in use?)"; }
    fi
    if ! PGPASSWORD=$DAGSTER_PG_PASSWORD "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
      PGPASSWORD=$DAGSTER_PG_PASSWORD "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE \"$db\"" >/dev/null
    fi
    echo "PostgreSQL $("$bin/postgres" --version | grep -Eo '[0-9]+\.[0-9]+' | head -n 1) on 127.0.0.1:$port, database $db, user $user (data in $dir/data)"
    ;;
  stop)
    bin=$(find_bindir)
    [[ -n $bin ]] || die "PostgreSQL is not installed"
    if [[ -f $dir/data/postmaster.pid ]]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
      echo "PostgreSQL in $dir stopped"
    else
      echo "PostgreSQL in $dir is not running"
    fi
    ;;
  status)
    bin=$(find_bindir)
    [[ -n $bin ]] || die "PostgreSQL is not installed"
    as_owner "$bin/pg_ctl" -D "$dir/data" status
    ;;
  *) usage ;;
esac
