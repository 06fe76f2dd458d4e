# shellcheck shell=bash
# A throwaway PostgreSQL for tests. Source this file, then:
#
#   agora_pg_start || exit 1
#   trap agora_pg_stop EXIT
#   ... tests read $AGORA_TEST_DATABASE_URL ...
#
# agora_pg_start initialises a cluster in a new temp directory (trust auth,
# listening on 127.0.0.1 only, on a free port, durability off for speed),
# waits until it accepts connections, creates database agora_test and exports
#   AGORA_TEST_DATABASE_URL=postgresql://USER@127.0.0.1:PORT/agora_test
# plus AGORA_PG_PORT and AGORA_PG_DIR. As root the server runs as the
# `postgres` user (PostgreSQL refuses to run as root). Needs the Debian
# package postgresql (binaries in /usr/lib/postgresql/<version>/bin), or
# AGORA_PG_BINDIR pointing at a bin directory.
# agora_pg_stop stops the server and deletes the directory; it is safe to
# call twice or when nothing was started.

_agora_pg_bindir() {
  if [[ -n ${AGORA_PG_BINDIR:-} ]]; then
    echo "$AGORA_PG_BINDIR"
    return 0
  fi
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [[ -x $d/initdb && -x $d/pg_ctl ]]; then
      echo "$d"
      return 0
    fi
  done
  echo "agora_pg_start: no PostgreSQL server binaries found (apt-get install postgresql)" >&2
  return 1
}

# Runs a command as the cluster owner, from inside the cluster directory.
_agora_pg_run() {
  if [[ $(id -u) == 0 ]]; then
    (cd "$AGORA_PG_DIR" && runuser -u postgres -- "$@")
  else
    (cd "$AGORA_PG_DIR" && "$@")
  fi
}

# True if something listens on 127.0.0.1:$1.
_agora_pg_port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

agora_pg_start() {
  local bindir user port _
  bindir=$(_agora_pg_bindir) || return 1
  if [[ $(id -u) == 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
      echo "agora_pg_start: running as root but there is no postgres user" >&2
      return 1
    fi
    user=postgres
  else
    user=$(id -un)
  fi

  if [[ -n ${AGORA_PG_DIR:-} && -d $AGORA_PG_DIR ]]; then
    echo "agora_pg_start: already started in $AGORA_PG_DIR (call agora_pg_stop first)" >&2
    return 1
  fi
  unset AGORA_PG_PORT AGORA_TEST_DATABASE_URL

  AGORA_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/agora-pg.XXXXXX") || return 1
  export AGORA_PG_DIR
  AGORA_PG_BIN=$bindir
  if [[ $(id -u) == 0 ]]; then
    chown postgres: "$AGORA_PG_DIR"
    # The postgres user must reach the directory; $TMPDIR may sit under /root.
    if ! runuser -u postgres -- test -w "$AGORA_PG_DIR"; then
      rm -rf "$AGORA_PG_DIR"
      AGORA_PG_DIR=$(mktemp -d /tmp/agora-pg.XXXXXX) || return 1
      chown postgres: "$AGORA_PG_DIR"
    fi
  fi
  if ! _agora_pg_run "$bindir/initdb" -D "$AGORA_PG_DIR/data" -U "$user" \
      --auth=trust --encoding=UTF8 --no-locale --no-sync >"$AGORA_PG_DIR/initdb.log" 2>&1; then
    echo "agora_pg_start: initdb failed:" >&2
    cat "$AGORA_PG_DIR/initdb.log" >&2
    agora_pg_stop
    return 1
  fi

  # Pick a random free port; retry if another process takes it first.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if _agora_pg_port_busy "$port"; then
      continue
    fi
    if _agora_pg_run "$bindir/pg_ctl" -D "$AGORA_PG_DIR/data" -l "$AGORA_PG_DIR/server.log" \
        -w -t 30 -o "-c listen_addresses=127.0.0.1 -p $port -k $AGORA_PG_DIR \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      AGORA_PG_PORT=$port
      export AGORA_PG_PORT
      break
    fi
    if ! grep -qi "address already in use" "$AGORA_PG_DIR/server.log" 2>/dev/null; then
      break
    fi
  done
  if [[ -z ${AGORA_PG_PORT:-} ]]; then
    echo "agora_pg_start: the server did not start:" >&2
    cat "$AGORA_PG_DIR/server.log" >&2 2>/dev/null
    agora_pg_stop
    return 1
  fi

  if ! "$bindir/createdb" -h 127.0.0.1 -p "$AGORA_PG_PORT" -U "$user" agora_test; then
    echo "agora_pg_start: createdb agora_test failed" >&2
    agora_pg_stop
    return 1
  fi
  export AGORA_TEST_DATABASE_URL="postgresql://$user@127.0.0.1:$AGORA_PG_PORT/agora_test"
}

agora_pg_stop() {
  if [[ -n ${AGORA_PG_DIR:-} && -d $AGORA_PG_DIR ]]; then
    if [[ -f $AGORA_PG_DIR/data/postmaster.pid ]]; then
      _agora_pg_run "${AGORA_PG_BIN:-$(_agora_pg_bindir)}/pg_ctl" -D "$AGORA_PG_DIR/data" \
        -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$AGORA_PG_DIR"
  fi
  unset AGORA_PG_DIR AGORA_PG_PORT AGORA_PG_BIN AGORA_TEST_DATABASE_URL
}
