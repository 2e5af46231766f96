#!/usr/bin/env bash
# Measures the CPU that idle reference-server processes use: starts them, lets
# them settle, then reads utime+stime from /proc/<pid>/stat over a window
# (60 s by default) and prints each process's share of one core. The idle
# figures in BENCHMARKS.md come from it.
#
#   scripts/idlecpu.sh sqlite        # one process on an SQLite file
#   scripts/idlecpu.sh sqlite 2      # two processes on one SQLite file
#   scripts/idlecpu.sh postgres 3    # three processes on one PostgreSQL schema
#                                    # (KEYFLOW_TEST_POSTGRES_DSN, default the local test database)
#   IDLE_SECONDS=20 scripts/idlecpu.sh sqlite
#   IDLE_WARM=1 scripts/idlecpu.sh postgres 2   # first verify a key on every
#                                    # instance, then wait 10 s: idle after traffic
#
# Extra server flags can follow the count (e.g. --change-max-lag 0).
set -euo pipefail
kind=${1:?usage: idlecpu.sh sqlite|postgres [instances] [server flags...]}
n=${2:-1}
shift $(( $# < 2 ? $# : 2 ))
window=${IDLE_SECONDS:-60}
settle=${IDLE_SETTLE:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n ${schema:-} ]] && PGOPTIONS="-c client_min_messages=warning" psql "$dsn" -qc "DROP SCHEMA $schema CASCADE"
  rm -rf "$work"
}
trap cleanup EXIT
(cd "$root/examples/server" && go build -o "$work/server" .) 2>/dev/null || (cd "$root" && go build -o "$work/server" ./examples/server)

export LANGFLOW_SECRET_KEY=idlecpu-shared-secret-0123456789 LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false LANGFLOW_LOG_LEVEL=info
dsn=${KEYFLOW_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
if [[ $kind == postgres ]]; then
  schema=idle_$(date +%s)_$$
  psql "$dsn" -qc "CREATE SCHEMA $schema"
  db="$dsn&search_path=$schema"
else
  db="sqlite:///$work/cfg/keyflow.db"
fi
mkdir -p "$work/cfg"
for i in $(seq "$n"); do
  "$work/server" run --port 0 --config-dir "$work/cfg" --database-url "$db" "$@" 2> "$work/s$i.log" &
  pids+=($!)
done
if [[ -n ${IDLE_WARM:-} ]]; then
  key=$("$work/server" api-key --config-dir "$work/cfg" --database-url "$db" --quiet 2>/dev/null)
  for i in $(seq "$n"); do
    url=
    for _ in $(seq 100); do
      url=$(grep -o 'listening on http://[0-9.:]*' "$work/s$i.log" | head -1 | cut -d' ' -f3 || true)
      [[ -n $url ]] && break
      sleep 0.1
    done
    ok=0
    for _ in $(seq 20); do curl -fs -o /dev/null -H "x-api-key: $key" "$url/api/v1/flows/" && ok=$((ok + 1)); done
    echo "instance $i ($url): $ok of 20 requests with a key answered 200"
  done
  settle=10
fi
sleep "$settle"
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -A before
for p in "${pids[@]}"; do before[$p]=$(ticks "$p"); done
start=$(date +%s.%N)
sleep "$window"
end=$(date +%s.%N)
for i in "${!pids[@]}"; do
  p=${pids[$i]}
  after=$(ticks "$p")
  awk -v b="${before[$p]}" -v a="$after" -v hz="$hz" -v s="$start" -v e="$end" -v i=$((i + 1)) -v k="$kind" \
    'BEGIN { printf "%s instance %d: %.3f %% of one core (%d ticks of 1/%d s over %.1f s)\n", k, i, 100 * (a - b) / hz / (e - s), a - b, hz, e - s }'
done
