// Package faults is keyflow's fault suite: its tests run the reference
// server (examples/server) as real processes against real PostgreSQL and
// SQLite, under steady load from the load tool's engine
// (examples/loadtest/loadgen), inject a fault — PostgreSQL restarted,
// connections cut mid-query, a full disk, SIGKILL during a usage flush or a
// key creation, a long soak — and check afterwards, by reading the database
// and the clients' own records, what was kept.
//
// The suite is black-box: it uses only the server's command line, its
// environment, its HTTP API and the database. It runs in a short form with
// go test (CI) and in a long form with scripts/faults.sh; what each
// scenario promises, and the figures measured, are in docs/faults.md.
package faults
