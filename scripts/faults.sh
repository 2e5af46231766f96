#!/usr/bin/env bash
# Runs keyflow's fault suite (examples/faults): the reference server as real
# processes on PostgreSQL and SQLite, under load, through a PostgreSQL
# restart, connections cut mid-query, a full disk, SIGKILLs, and a soak; and
# the rotate-secret kill test of examples/server. It prints each scenario's
# figures (the RESULT lines) at the end; docs/faults.md says what each
# scenario promises.
#
#   scripts/faults.sh                          # the short form, as CI runs it (about 2 min)
#   scripts/faults.sh --duration 30m --soak    # only the soak, for 30 minutes
#   scripts/faults.sh --long                   # everything long: 30 s outages, 20 kills, 200 rotate-secret kills, a 30 min soak
#   scripts/faults.sh --outage 30s --run 'TestPostgres'   # one family of scenarios
#
# Flags:
#   --duration D    how long the soak runs (default 60s)
#   --soak          run only the soak
#   --outage D      how long PostgreSQL stays away / connections are cut (default 3s)
#   --kills N       SIGKILLs per key-creation scenario (default 3)
#   --rotate-runs N runs of the rotate-secret kill test (default 40; 0 skips it)
#   --run REGEXP    only the fault scenarios matching REGEXP (go test -run)
#   --race          build the server with the race detector
#   --long          --duration 30m --outage 30s --kills 20 --rotate-runs 200
#
# It needs PostgreSQL (KEYFLOW_TEST_POSTGRES_DSN, default the local test
# database) and, for the disk-full scenario, root (it mounts a 4 MiB tmpfs;
# without root that scenario is skipped with a message).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

duration=60s outage=3s kills=3 rotate_runs=40 run=. race=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --duration) duration=${2:?--duration needs a value}; shift 2 ;;
    --soak) run=TestSoak; rotate_runs=0; shift ;;
    --outage) outage=${2:?--outage needs a value}; shift 2 ;;
    --kills) kills=${2:?--kills needs a value}; shift 2 ;;
    --rotate-runs) rotate_runs=${2:?--rotate-runs needs a value}; shift 2 ;;
    --run) run=${2:?--run needs a value}; shift 2 ;;
    --race) race=1; shift ;;
    --long) duration=30m outage=30s kills=20 rotate_runs=200; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "faults.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
done

export KEYFLOW_TEST_POSTGRES_DSN="${KEYFLOW_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export KEYFLOW_FAULTS_RACE=$race
log=$(mktemp)
trap 'rm -f "$log"' EXIT

status=0
# The soak's duration plus the other scenarios' few minutes.
go test -count=1 -v -timeout 3h -run "$run" ./examples/faults \
  -args -faults.soak "$duration" -faults.outage "$outage" -faults.kills "$kills" 2>&1 | tee "$log" || status=1
if [[ $rotate_runs -gt 0 ]]; then
  echo "== rotate-secret killed anywhere ($rotate_runs runs)"
  KEYFLOW_ROTATE_KILL_RUNS=$rotate_runs go test -count=1 -v -timeout 1h -run '^TestRotateSecretKilledAnywhere$' ./examples/server 2>&1 |
    tee -a "$log" || status=1
fi

echo
echo "== results"
grep -E 'RESULT|outcomes over|one uninterrupted run|^(--- |ok|FAIL)' "$log" | sed 's/^ *//' || true
exit $status
