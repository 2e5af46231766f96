#!/usr/bin/env bash
# Compares secrets.Keyring with raw fernet-go on a shared machine: each
# round runs BenchmarkEncrypt and BenchmarkDecrypt's two sub-benchmarks as
# separate runs, keyring first in odd rounds and fernet-go first in even
# ones, because whichever runs first is measured slower when other jobs
# share the cores. The figures of BENCHMARKS.md ("secrets") come from it;
# summarise with benchstat:
#
#   scripts/bench-secrets.sh > secrets.txt && benchstat secrets.txt
#   ROUNDS=40 BENCHTIME=500ms scripts/bench-secrets.sh
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-20}"
BENCHTIME="${BENCHTIME:-300ms}"
bin="$(mktemp -d)/secrets.test"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go test -c -o "$bin" ./secrets/

for i in $(seq 1 "$ROUNDS"); do
	for op in Encrypt Decrypt; do
		order="keyring fernet-go"
		if ((i % 2 == 0)); then order="fernet-go keyring"; fi
		for impl in $order; do
			"$bin" -test.run '^$' -test.bench "^Benchmark$op\$/^$impl\$" -test.benchmem -test.benchtime "$BENCHTIME"
		done
	done
done | grep -E '^(Benchmark|goos|goarch|pkg|cpu)' | awk '!/^(goos|goarch|pkg|cpu)/ || !seen[$0]++'
