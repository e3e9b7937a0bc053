# Sourced by .ci/run: starts a throwaway PostgreSQL cluster for the tests
# that need a real database, exports its URL as FLAGS_TEST_POSTGRES and
# registers pg_stop, which stops and removes it (.ci/run calls it on exit,
# success or failure).
#
# It finds initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin, else
# installs Debian's postgresql. initdb refuses to run as root, so as root the
# cluster belongs to the postgres user (or a user made for it).

pg_find_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  return 1
}

pg_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null \
    || echo $((20000 + RANDOM % 20000))
}

pg_start() {
  local bin
  if ! bin=$(pg_find_bin); then
    echo "== PostgreSQL not found: installing Debian's postgresql"
    if [ "$(id -u)" = 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
      sudo -n sh -c 'DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql' >/dev/null
    fi
    bin=$(pg_find_bin) || { echo "PostgreSQL could not be installed"; return 1; }
  fi
  PG_DIR=$(mktemp -d /tmp/flags-pg.XXXXXX)
  local port; port=$(pg_free_port)
  local run=()
  PG_USER=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    PG_USER=postgres
    id -u "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home "$PG_USER"
    chown "$PG_USER" "$PG_DIR"
    run=(runuser -u "$PG_USER" --)
  fi
  chmod 700 "$PG_DIR"
  "${run[@]}" "$bin/initdb" -D "$PG_DIR/data" -U "$PG_USER" -A trust -E UTF8 --no-instructions >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log"; return 1; }
  "${run[@]}" "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c fsync=off -c max_connections=200" start >/dev/null \
    || { cat "$PG_DIR/server.log"; return 1; }
  PG_BIN=$bin
  export FLAGS_TEST_POSTGRES="postgres://$PG_USER@127.0.0.1:$port/postgres?sslmode=disable"
  # Tests that stop and restart the database (pg_ctl stop -m immediate)
  # need to know where it lives and how to run pg_ctl as its owner.
  export FLAGS_TEST_POSTGRES_DATA="$PG_DIR/data" FLAGS_TEST_POSTGRES_BIN="$bin" FLAGS_TEST_POSTGRES_USER="$PG_USER"
  echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_DIR)"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  local run=()
  [ "$(id -u)" = 0 ] && run=(runuser -u "$PG_USER" --)
  "${run[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  PG_DIR=
}
