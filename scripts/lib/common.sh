# Shared set-up for scripts/run and scripts/test: install what is missing, start a private
# PostgreSQL/PostGIS cluster when no DATABASE_URL is given. Sourced, not run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VAR="$ROOT/var"
PG_MAJOR=${PG_MAJOR:-15}
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"
PGPORT_PRIVATE=${GRIDPATROL_PGPORT:-54329}
PGDATA_PRIVATE="$VAR/pg/data"
PGSOCK_PRIVATE="$VAR/pg/run"
VENV="$VAR/venv"
# the database role the application serves as in the private cluster (`gridpatrol db app-role`);
# the private cluster trusts local connections, so it has no password
APP_ROLE=${GRIDPATROL_APP_ROLE:-gridpatrol_app}
APT_UPDATED=""

log() { printf '\033[1m[gridpatrol]\033[0m %s\n' "$*" >&2; }

need_root_for() {
  if [ "$(id -u)" -ne 0 ]; then
    log "installing $* needs root (apt-get); run as root or install it yourself"
    exit 1
  fi
}

apt_install() {
  need_root_for "$*"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgis() {
  local missing=()
  [ -x "$PG_BIN/pg_ctl" ] || missing+=("postgresql-$PG_MAJOR")
  [ -f "/usr/share/postgresql/$PG_MAJOR/extension/postgis.control" ] || missing+=("postgresql-$PG_MAJOR-postgis-3")
  if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 || apt_install chromium
}

ensure_python() {
  local stamp="$VENV/.installed"
  local want
  want=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtual environment in $VENV"
    python3 -m venv "$VENV" || { apt_install python3-venv; python3 -m venv "$VENV"; }
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing the project (pip)"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT[test]"
    echo "$want" >"$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

port_taken() {
  python3 -c "import socket,sys; s=socket.socket(); sys.exit(0 if s.connect_ex(('127.0.0.1', $1)) == 0 else 1)"
}

# Runs a command as the unprivileged owner of the private cluster (PostgreSQL refuses root).
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_private_cluster() {
  ensure_postgis
  mkdir -p "$VAR/pg"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    chown postgres: "$VAR/pg"
  fi
  if [ ! -f "$PGDATA_PRIVATE/PG_VERSION" ]; then
    log "initialising a private PostgreSQL cluster in $PGDATA_PRIVATE"
    as_pg "$PG_BIN/initdb" -D "$PGDATA_PRIVATE" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  as_pg mkdir -p "$PGSOCK_PRIVATE"
  if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_PRIVATE" status >/dev/null 2>&1; then
    PGPORT_PRIVATE=$(head -4 "$PGDATA_PRIVATE/postmaster.pid" | tail -1)
  else
    # another cluster (another checkout's) may hold the port: take the next free one. A port can also
    # be held by a socket that takes no connections (another program's outgoing connection): when
    # PostgreSQL cannot bind it, the next one, up to ten times
    local tries=0
    while :; do
      while port_taken "$PGPORT_PRIVATE"; do PGPORT_PRIVATE=$((PGPORT_PRIVATE + 1)); done
      log "starting PostgreSQL on 127.0.0.1:$PGPORT_PRIVATE"
      if as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_PRIVATE" -l "$VAR/pg/server.log" -w -t 60 start \
        -o "-p $PGPORT_PRIVATE -k $PGSOCK_PRIVATE -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null; then
        break
      fi
      tries=$((tries + 1))
      if [ "$tries" -ge 10 ] || ! tail -5 "$VAR/pg/server.log" | grep -q "could not create any TCP/IP sockets"; then
        log "PostgreSQL did not start; see $VAR/pg/server.log"
        return 1
      fi
      PGPORT_PRIVATE=$((PGPORT_PRIVATE + 1))
    done
  fi
  PRIVATE_ADMIN_URL="postgresql://postgres@127.0.0.1:$PGPORT_PRIVATE"
}

# create_database NAME: an empty database in the private cluster, unless it exists
create_database() {
  local name=$1
  if ! psql "$PRIVATE_ADMIN_URL/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    psql "$PRIVATE_ADMIN_URL/postgres" -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}
