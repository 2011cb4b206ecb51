# Start and stop a throw-away PostgreSQL cluster on a free loopback port (sourced by .ci/run).
# PostgreSQL refuses to run as root, so the cluster belongs to the postgres user.

start_postgres() {
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_DIR=$(mktemp -d /tmp/rendezvous-pg.XXXXXX)
  chown postgres:postgres "$PG_DIR"
  PG_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  runuser -u postgres -- "$bindir/initdb" -D "$PG_DIR/data" -U postgres -A trust --no-sync -E UTF8 >/dev/null
  runuser -u postgres -- "$bindir/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
    -o "-h 127.0.0.1 -p $PG_PORT -k $PG_DIR -c fsync=off -c full_page_writes=off" start >/dev/null
  PG_PIDFILE="$PG_DIR/data/postmaster.pid"
  PG_BINDIR="$bindir"
  PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  export PG_URL
  echo "PostgreSQL $(basename "$(dirname "$bindir")") on 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  if [ -n "${PG_DIR:-}" ] && [ -f "${PG_PIDFILE:-}" ]; then
    runuser -u postgres -- "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || \
      kill "$(head -n 1 "$PG_PIDFILE")" 2>/dev/null || true
  fi
  [ -n "${PG_DIR:-}" ] && rm -rf "$PG_DIR"
}
