package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keyflow-dev/keyflow/examples/server/internal/httpguard"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
)

// serve is the run subcommand (Langflow's `langflow run`): it serves the
// API and the web UI until SIGINT or SIGTERM (a second one stops it at
// once), then writes the usage counters.
func serve(args []string, stderr io.Writer) error {
	fs, common := newFlagSet("run", stderr)
	host := fs.String("host", "127.0.0.1", "the `ADDRESS` to listen on (env LANGFLOW_HOST; default 127.0.0.1)")
	port := fs.Int("port", 7860, "the `PORT` to listen on, 0 for any free port (env LANGFLOW_PORT; default 7860)")
	allowedHosts := fs.String("allowed-hosts", "", "the `HOSTS` the server answers besides localhost, loopback addresses and --host, comma-separated: name, .domain (with its subdomains) or * (env KEYFLOW_ALLOWED_HOSTS; enforced while LANGFLOW_AUTO_LOGIN is on, or when set)")
	fs.StringVar(&common.Limiter, "limiter", "", "where API keys' rate limits are counted: memory (this instance alone), database (shared by the instances on the database) or a `URL` redis://host:port/db (shared through Redis) (env KEYFLOW_LIMITER; default: database on PostgreSQL, memory on SQLite)")
	debugAddr := fs.String("debug-addr", os.Getenv(debugAddrEnv), "serve Go's runtime profiles (goroutines, heap, …) on `HOST:PORT`, off when empty (env "+debugAddrEnv+")")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	// Flags given on the command line win over the environment.
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if !explicit["host"] {
		host = nil
	}
	if !explicit["port"] {
		port = nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C ends the process at once
	}()

	hosts, err := httpguard.ParseAllowedHosts("--allowed-hosts", *allowedHosts)
	if err != nil {
		return err
	}
	a, err := open(ctx, common, host, port, stderr)
	if err != nil {
		return err
	}
	if explicit["allowed-hosts"] {
		a.Config.AllowedHosts = hosts
	}
	stopDebug, err := startDebug(*debugAddr, a.Log)
	if err != nil {
		return errors.Join(fmt.Errorf("--debug-addr: %w", err), a.Close())
	}
	defer stopDebug()
	// Close writes the usage counters; if it cannot, the exit code says so.
	return errors.Join(httpserver.Run(ctx, a), a.Close())
}
