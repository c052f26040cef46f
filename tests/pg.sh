#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the history tests and prints the line
#   export RAMTID_TEST_PG_URL=postgres://USER@127.0.0.1:PORT/postgres
# for `eval "$(bash tests/pg.sh --watch $$)"`. With --watch PID the server is stopped and
# its directory removed when process PID ends (the test process, or .ci/run).
# Uses Debian's server binaries (/usr/lib/postgresql/<version>/bin); initdb refuses to run
# as root, so as root it runs them as the `postgres` user. Exits non-zero, saying why on
# stderr, where a server cannot be started.
set -euo pipefail

watch=""
if [[ "${1:-}" == "--watch" ]]; then
  watch="${2:?--watch needs a pid}"
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
  echo "pg.sh: no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)" >&2
  exit 2
fi

dir=$(mktemp -d /tmp/ramtid-pg.XXXXXX)
chmod 755 "$dir"
if [[ $(id -u) == 0 ]]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "pg.sh: running as root and there is no postgres user to run the server as" >&2
    exit 2
  fi
  chown postgres: "$dir"
  as=(runuser -u postgres --)
  user=postgres
else
  as=()
  user=$(id -un)
fi

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

if ! "${as[@]}" "$bindir/initdb" -D "$dir/data" -U "$user" --auth=trust -E UTF8 \
    >"$dir/initdb.log" 2>&1; then
  echo "pg.sh: initdb failed:" >&2
  cat "$dir/initdb.log" >&2
  exit 1
fi
# fsync stays on: the history's durability (and its throughput figures) are real.
if ! "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null 2>&1; then
  echo "pg.sh: the server did not start:" >&2
  cat "$dir/data/server.log" >&2 || true
  exit 1
fi

if [[ -n "$watch" ]]; then
  stop="${as[*]} $bindir/pg_ctl -D $dir/data -m immediate stop"
  nohup bash -c "while kill -0 $watch 2>/dev/null; do sleep 1; done; $stop; rm -rf $dir" \
    </dev/null >/dev/null 2>&1 &
fi

echo "export RAMTID_TEST_PG_URL=postgres://$user@127.0.0.1:$port/postgres"
