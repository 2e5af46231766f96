#!/usr/bin/env bash
# Compares the reference server with its physical floor (examples/floor: a
# bare net/http server answering the same bodies, no authentication, no
# database) under the same load: examples/loadtest, keep-alive, 16
# connections, 20 rotating keys, with 0 % and 10 % unknown keys, on
# GET /api/v1/flows/ and POST /api/v1/run/{flow_id}. keyflow and the floor
# run interleaved (PAIRS pairs of SECONDS each, the order alternating), and
# the script prints, per pair and as min–median–max, the keyflow/floor ratios
# of req/s and of CPU per request (utime + stime of the server process from
# /proc/PID/stat; on PostgreSQL also with the CPU of the server's database
# sessions, found by their application_name). The "floor" figures in
# BENCHMARKS.md come from it.
#
#   scripts/floorbench.sh                  # SQLite, then PostgreSQL
#   scripts/floorbench.sh sqlite           # one database
#   PAIRS=5 SECONDS_PER_RUN=5 scripts/floorbench.sh postgres
#   ROUTES=run UNKNOWN=0.1 scripts/floorbench.sh sqlite
#
# PostgreSQL: KEYFLOW_TEST_POSTGRES_DSN (default the local test database); a
# fresh schema, dropped after.
set -euo pipefail
kinds=("${@:-sqlite}")
[[ $# -eq 0 ]] && kinds=(sqlite postgres)
pairs=${PAIRS:-3}
secs=${SECONDS_PER_RUN:-5}
routes=(${ROUTES:-flows run})
unknowns=(${UNKNOWN:-0 0.1})
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
schema=
dsn=${KEYFLOW_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  if [[ -n $schema ]]; then
    PGOPTIONS="-c client_min_messages=warning" psql "$dsn" -qc "DROP SCHEMA $schema CASCADE" || true
    schema=
  fi
}
trap 'stop_all; rm -rf "$work"' EXIT
(cd "$root" && go build -o "$work/server" ./examples/server && go build -o "$work/loadtest" ./examples/loadtest &&
  go build -o "$work/floor" ./examples/floor)
cd "$work"
export LANGFLOW_SECRET_KEY=floorbench-shared-secret-0123456789 LANGFLOW_STORE_ENVIRONMENT_VARIABLES=false LANGFLOW_LOG_LEVEL=info
hz=$(getconf CLK_TCK)
app=floorbench_$$

# ready LOG: waits for "listening on http://…" in LOG and prints the URL.
ready() {
  for _ in $(seq 200); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$1" | head -1 | cut -d' ' -f3 || true)
    [[ -n $url ]] && { echo "$url"; return; }
    sleep 0.05
  done
  echo "no ready line in $1:" >&2; cat "$1" >&2; exit 1
}

# ticks PID...: the sum of utime + stime of the processes (0 for gone ones).
ticks() {
  local sum=0 t
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    sum=$((sum + t))
  done
  echo "$sum"
}

# dbsnap: "pid ticks" of each of the server's PostgreSQL sessions (none on
# SQLite).
dbsnap() {
  [[ -n $schema ]] || return 0
  for p in $(psql "$dsn" -Atqc "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'"); do
    echo "$p $(ticks "$p")"
  done
}

# dbdelta BEFORE AFTER: the ticks the sessions used between two dbsnap
# outputs (a session that ended meanwhile is not counted; one that started
# counts from 0).
dbdelta() {
  awk 'NR == FNR { b[$1] = $2; next } { d += $2 - b[$1] } END { print d + 0 }' <(echo "$1") <(echo "$2")
}

# measure NAME PID URL ARGS...: one load run against URL; prints
# "NAME req/s cpu-us/req db-cpu-us/req".
measure() {
  local name=$1 pid=$2 url=$3
  shift 3
  local d0 t0 out n rps t1 d1
  d0=$(dbsnap)
  t0=$(ticks "$pid")
  out=$(./loadtest -url "$url" -keys-file keys.txt -c 16 -d "${secs}s" -progress=false "$@") || {
    echo "$out" >&2; echo "loadtest failed against $name" >&2; exit 1; }
  t1=$(ticks "$pid")
  d1=$(dbsnap)
  n=$(sed -n 's/^\([0-9]*\) requests in .*/\1/p' <<<"$out")
  rps=$(sed -n 's/.*: \([0-9]*\) req\/s$/\1/p' <<<"$out")
  awk -v name="$name" -v n="$n" -v rps="$rps" -v t="$((t1 - t0))" -v d="$(dbdelta "$d0" "$d1")" -v hz="$hz" \
    'BEGIN { printf "%s %d %.2f %.2f\n", name, rps, t * 1e6 / hz / n, d * 1e6 / hz / n }'
}

# stats: reads numbers, prints "min–median–max".
stats() {
  sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "%.2f–%.2f–%.2f", v[1], m, v[NR] }'
}

for kind in "${kinds[@]}"; do
  rm -rf cfg keys.txt && mkdir -p cfg
  if [[ $kind == postgres ]]; then
    schema=fb_$(date +%s)_$$
    psql "$dsn" -qc "CREATE SCHEMA $schema"
    db="$dsn&search_path=$schema&application_name=$app"
  else
    db="sqlite:///$work/cfg/keyflow.db"
  fi
  for _ in $(seq 20); do
    ./server api-key --config-dir cfg --database-url "$db" --quiet >> keys.txt 2>/dev/null
  done
  ./server run --port 0 --config-dir cfg --database-url "$db" 2> server.log &
  spid=$!
  pids+=("$spid")
  surl=$(ready server.log)
  key=$(head -1 keys.txt)
  # A flow of three fields: a stored Credential, a stored Generic variable, a literal.
  curl -fsS -o /dev/null -H "x-api-key: $key" -H 'Content-Type: application/json' "$surl/api/v1/variables/" \
    -d '{"name": "OPENAI_API_KEY", "value": "sk-bench-credential", "type": "Credential"}'
  curl -fsS -o /dev/null -H "x-api-key: $key" -H 'Content-Type: application/json' "$surl/api/v1/variables/" \
    -d '{"name": "BASE_URL", "value": "https://api.example.com", "type": "Generic"}'
  flow=$(curl -fsS -H "x-api-key: $key" -H 'Content-Type: application/json' "$surl/api/v1/flows/" \
    -d '{"name": "Bench", "fields": {"api_key": {"variable": "OPENAI_API_KEY"}, "base_url": {"variable": "BASE_URL"}, "model": {"value": "gpt-4o"}}}' |
    grep -o '"id":"[0-9a-f-]*"' | head -1 | cut -d'"' -f4)
  runbody='{"input_value": "Hello, floor"}'
  curl -fsS -o flows.json -H "x-api-key: $key" "$surl/api/v1/flows/"
  curl -fsS -o run.json -H "x-api-key: $key" -H 'Content-Type: application/json' "$surl/api/v1/run/$flow" -d "$runbody"
  ./floor -flows flows.json -run run.json 2> floor.log &
  fpid=$!
  pids+=("$fpid")
  furl=$(ready floor.log)

  for route in "${routes[@]}"; do
    if [[ $route == run ]]; then
      args=(-method POST -path "/api/v1/run/$flow" -body "$runbody")
    else
      args=(-path /api/v1/flows/)
    fi
    for unknown in "${unknowns[@]}"; do
      echo "=== $kind, $route, unknown keys $unknown: $pairs pairs of ${secs} s"
      printf '%-5s %9s %9s %6s %11s %11s %6s' pair kf-req/s fl-req/s ratio kf-cpu/req fl-cpu/req ratio
      [[ $kind == postgres ]] && printf ' %13s %6s' kf+db-cpu/req ratio
      echo
      : > ratios.txt
      for i in $(seq "$pairs"); do
        if (( i % 2 )); then
          k=$(measure keyflow "$spid" "$surl" "${args[@]}" -unknown "$unknown")
          f=$(measure floor "$fpid" "$furl" "${args[@]}" -unknown "$unknown" -no-auth)
        else
          f=$(measure floor "$fpid" "$furl" "${args[@]}" -unknown "$unknown" -no-auth)
          k=$(measure keyflow "$spid" "$surl" "${args[@]}" -unknown "$unknown")
        fi
        read -r _ krps kcpu kdb <<<"$k"
        read -r _ frps fcpu _ <<<"$f"
        line=$(awk -v i="$i" -v kr="$krps" -v fr="$frps" -v kc="$kcpu" -v fc="$fcpu" -v kd="$kdb" -v pg="$([[ $kind == postgres ]] && echo 1)" \
          'BEGIN { printf "%-5d %9d %9d %6.2f %9.1fus %9.1fus %6.2f", i, kr, fr, kr / fr, kc, fc, kc / fc;
                   if (pg) printf " %11.1fus %6.2f", kc + kd, (kc + kd) / fc; printf "\n" }')
        echo "$line"
        awk -v kr="$krps" -v fr="$frps" -v kc="$kcpu" -v fc="$fcpu" -v kd="$kdb" \
          'BEGIN { printf "%.4f %.4f %.4f\n", kr / fr, kc / fc, (kc + kd) / fc }' >> ratios.txt
      done
      printf 'ratios (min–median–max): req/s %s, cpu/req %s' "$(cut -d' ' -f1 ratios.txt | stats)" "$(cut -d' ' -f2 ratios.txt | stats)"
      [[ $kind == postgres ]] && printf ', cpu/req with the database %s' "$(cut -d' ' -f3 ratios.txt | stats)"
      echo
    done
  done
  stop_all
done
