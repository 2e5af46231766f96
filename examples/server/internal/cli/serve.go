package cli

import (
	"context"
	"errors"
	"flag"
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
	// Close writes the usage counters; if it cannot, the exit code says so.
	return errors.Join(httpserver.Run(ctx, a), a.Close())
}
