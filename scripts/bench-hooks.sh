#!/usr/bin/env bash
# Measures what observe's hooks cost a warm verification on a shared
# machine: each round runs BenchmarkVerifyHooks (apikey: no hooks, hooks that
# do nothing) and BenchmarkVerifyPrometheus (observe/promhooks: no hooks, the
# Prometheus adapter) as separate runs, alternating the order of the
# sub-benchmarks from round to round (whichever runs first is measured slower
# when other jobs share the cores). Besides ns/op the benchmarks report
# cpu-ns/op, the process's CPU time per verification, which other jobs
# disturb much less. The figures of BENCHMARKS.md ("observe") come from it;
# summarise with benchstat:
#
#   scripts/bench-hooks.sh > hooks.txt && benchstat hooks.txt
#   ROUNDS=20 BENCHTIME=500ms scripts/bench-hooks.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-10}"
BENCHTIME="${BENCHTIME:-300ms}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
go test -c -o "$dir/apikey.test" ./apikey/
go test -c -o "$dir/prom.test" ./observe/promhooks/

for i in $(seq 1 "$ROUNDS"); do
	a="none nop" p="none prometheus"
	if ((i % 2 == 0)); then a="nop none" p="prometheus none"; fi
	for s in $a; do
		(cd apikey && "$dir/apikey.test" -test.run '^$' -test.bench "^BenchmarkVerifyHooks\$/^$s\$" -test.benchmem -test.benchtime "$BENCHTIME" -test.cpu 1)
	done
	for s in $p; do
		(cd observe/promhooks && "$dir/prom.test" -test.run '^$' -test.bench "^BenchmarkVerifyPrometheus\$/^$s\$" -test.benchmem -test.benchtime "$BENCHTIME" -test.cpu 1)
	done
done | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' | awk '!/^(goos|goarch|pkg|cpu)/ || !seen[$0]++'
