#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL and Redis on free loopback ports for the test suite.
#
#   .ci/services.sh start DIR   -> prints `export DATABASE_URL=... CELERY_BROKER_URL=...
#                                  PODIUM_SERVICES_DIR=DIR PODIUM_SERVICES_DATABASE_URL=...`
#   .ci/services.sh stop DIR
#   .ci/services.sh pg-stop DIR   stop only PostgreSQL (fast: open connections are cut), and
#   .ci/services.sh pg-start DIR  start it again on the same port: an outage, for tests
#
# Installs the OS packages where missing (as root, or through sudo). initdb refuses to run
# as root, so the cluster runs as an unprivileged user that owns DIR/pg.
set -euo pipefail

action="${1:?usage: services.sh start|stop DIR}"
dir="${2:?usage: services.sh start|stop DIR}"

say() { echo "services: $*" >&2; }
die() { echo "services: $*" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}

pg_bindir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$found" ] && [ -x "$found/initdb" ]; then echo "$found"; return; fi
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  return 1
}

install_packages() {
  local missing=()
  pg_bindir >/dev/null 2>&1 || missing+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]} from the OS packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "could not install ${missing[*]}: install them (apt-get install ${missing[*]}) or set DATABASE_URL and CELERY_BROKER_URL to running servers."
  # Debian starts the packaged services on install; ours run on their own ports, so stop those.
  as_root sh -c 'command -v service >/dev/null && { service redis-server stop; service postgresql stop; } >/dev/null 2>&1 || true'
}

run_as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$pg_user" -- "$@"; else "$@"; fi
}

# Needs bindir, pg_user and pg_port.
pg_server_start() {
  run_as_pg_user "$bindir/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
    -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || die "PostgreSQL did not start; see $dir/pg/server.log"
}

start() {
  mkdir -p "$dir"
  chmod 755 "$dir"  # the unprivileged database user must reach its folder inside
  install_packages
  local bindir pg_port redis_port
  bindir=$(pg_bindir) || die "PostgreSQL's initdb was not found after installing."

  pg_user=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    pg_user=postgres
    id -u "$pg_user" >/dev/null 2>&1 || useradd --system --no-create-home "$pg_user"
  fi
  mkdir -p "$dir/pg"
  [ "$(id -u)" = 0 ] && chown -R "$pg_user" "$dir/pg"
  pg_port=$(free_port)
  run_as_pg_user "$bindir/initdb" -D "$dir/pg/data" -U podium --auth=trust -E UTF8 --no-sync >"$dir/pg/initdb.log" 2>&1 \
    || die "initdb failed; see $dir/pg/initdb.log"
  pg_server_start
  run_as_pg_user "$bindir/createdb" -h 127.0.0.1 -p "$pg_port" -U podium podium

  redis_port=$(free_port)
  # Persistence on (appendonly), as in production, so a restart keeps queued messages.
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir" --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --appendonly yes --save "" >/dev/null \
    || die "redis-server did not start; see $dir/redis.log"
  for _ in $(seq 1 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 || die "Redis did not answer on port $redis_port"

  cat >"$dir/env" <<ENV
PG_BINDIR=$bindir
PG_USER=$pg_user
PG_PORT=$pg_port
REDIS_PORT=$redis_port
ENV
  local database_url="postgres://podium@127.0.0.1:$pg_port/podium"
  # PODIUM_SERVICES_DATABASE_URL tells tests which database pg-stop/pg-start control, even
  # where the caller then points DATABASE_URL at a server of its own.
  echo "export DATABASE_URL=$database_url CELERY_BROKER_URL=redis://127.0.0.1:$redis_port/0 PODIUM_SERVICES_DIR=$dir PODIUM_SERVICES_DATABASE_URL=$database_url"
}

stop() {
  [ -f "$dir/env" ] || return 0
  # shellcheck disable=SC1091
  . "$dir/env"
  pg_user=$PG_USER
  run_as_pg_user "$PG_BINDIR/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$dir"
}

load_env() {
  [ -f "$dir/env" ] || die "no services started in $dir"
  # shellcheck disable=SC1091
  . "$dir/env"
  bindir=$PG_BINDIR pg_user=$PG_USER pg_port=${PG_PORT:?}
}

pg_stop() {
  load_env
  run_as_pg_user "$bindir/pg_ctl" -D "$dir/pg/data" -m fast -w -t 60 stop >/dev/null \
    || die "PostgreSQL did not stop; see $dir/pg/server.log"
}

pg_start() {
  load_env
  pg_server_start
}

case "$action" in
  start) start ;;
  stop) stop ;;
  pg-stop) pg_stop ;;
  pg-start) pg_start ;;
  *) die "unknown action $action (start, stop, pg-stop or pg-start)" ;;
esac
