#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the history tests and prints the lines
#   export RAMTID_TEST_PG_URL=postgres://USER@127.0.0.1:PORT/postgres
#   export RAMTID_TEST_PG_CA=/tmp/ramtid-pg.…/tls/ca.pem     (the server also speaks TLS)
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
# TLS with a throwaway CA, so that the history's TLS path is tested against a real server:
# its CA goes to RAMTID_TEST_PG_CA.
ssl_opts=""
if command -v openssl >/dev/null 2>&1; then
  tls="$dir/tls"
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ramtid test PostgreSQL CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$tls/san.ext"
  openssl x509 -req -days 2 -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -extfile "$tls/san.ext" -out "$tls/server.pem" >/dev/null 2>&1
  chmod 600 "$tls/server.key"
  if [[ ${#as[@]} -gt 0 ]]; then chown -R postgres: "$tls"; fi
  ssl_opts="-c ssl=on -c ssl_cert_file=$tls/server.pem -c ssl_key_file=$tls/server.key"
else
  echo "pg.sh: no openssl: the server runs without TLS (RAMTID_TEST_PG_CA unset)" >&2
fi

# fsync stays on: the history's durability (and its throughput figures) are real.
if ! "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $ssl_opts" start >/dev/null 2>&1; then
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
if [[ -n "$ssl_opts" ]]; then
  echo "export RAMTID_TEST_PG_CA=$tls/ca.pem"
fi
