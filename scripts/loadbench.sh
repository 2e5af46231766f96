#!/usr/bin/env bash
# Drives one and two reference-server instances on one database with
# examples/loadtest, warm keys and 10 % unknown keys, 10 s each; the figures
# in BENCHMARKS.md ("Several instances") come from it.
#
#   scripts/loadbench.sh sqlite
#   scripts/loadbench.sh postgres   # uses KEYFLOW_TEST_POSTGRES_DSN (a fresh schema, dropped after)
set -euo pipefail
kind=${1:?usage: loadbench.sh sqlite|postgres}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/server" ./examples/server && go build -o "$work/loadtest" ./examples/loadtest)
cd "$work"

export LANGFLOW_SECRET_KEY=loadbench-shared-secret-0123456789 LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false LANGFLOW_LOG_LEVEL=warn
dsn=${KEYFLOW_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
if [[ $kind == postgres ]]; then
  schema=lb_$(date +%s)
  psql "$dsn" -qc "CREATE SCHEMA $schema"
  trap 'kill $(jobs -p) 2>/dev/null || true; psql "$dsn" -qc "DROP SCHEMA $schema CASCADE"; rm -rf "$work"' EXIT
  db="$dsn&search_path=$schema"
else
  db="sqlite:///$work/cfg/keyflow.db"
fi
mkdir -p cfg
for _ in $(seq 20); do
  ./server api-key --config-dir cfg --database-url "$db" | grep -o 'sk-[A-Za-z0-9_-]\{43\}' >> keys.txt
done
./server run --port 17861 --config-dir cfg --database-url "$db" 2> s1.log &
./server run --port 17862 --config-dir cfg --database-url "$db" 2> s2.log &
for port in 17861 17862; do
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done
done
for urls in http://127.0.0.1:17861 http://127.0.0.1:17861,http://127.0.0.1:17862; do
  for unknown in 0 0.1; do
    echo "=== $kind, urls=$urls, unknown keys=$unknown"
    ./loadtest -url "$urls" -keys-file keys.txt -c 16 -d 10s -unknown "$unknown" -progress=false
  done
done
