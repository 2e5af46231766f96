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
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpguard"
	"github.com/keyflow-dev/keyflow/examples/server/internal/httpserver"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/examples/server/internal/telemetry"
)

// serve is the run subcommand (Langflow's `langflow run`): it serves the
// API and the web UI until SIGINT or SIGTERM (a second one stops it at
// once), then writes the usage counters.
func serve(args []string, stderr io.Writer) error {
	fs, common := newFlagSet("run", stderr)
	host := fs.String("host", "127.0.0.1", "the `ADDRESS` to listen on (env LANGFLOW_HOST; default 127.0.0.1)")
	port := fs.Int("port", 7860, "the `PORT` to listen on, 0 for any free port (env LANGFLOW_PORT; default 7860)")
	metricsAddr := fs.String("metrics-addr", "", "serve Prometheus metrics at /metrics on `HOST:PORT`, a listen address of its own (env KEYFLOW_METRICS_ADDR; default: off)")
	allowedHosts := fs.String("allowed-hosts", "", "the `HOSTS` the server answers besides localhost, loopback addresses and --host, comma-separated: name, .domain (with its subdomains) or * (env KEYFLOW_ALLOWED_HOSTS; enforced while LANGFLOW_AUTO_LOGIN is on, or when set)")
	fs.StringVar(&common.Limiter, "limiter", "", "where API keys' rate limits are counted: memory (this instance alone), database (shared by the instances on the database) or a `URL` redis://host:port/db (shared through Redis) (env KEYFLOW_LIMITER; default: database on PostgreSQL, memory on SQLite)")
	debugAddr := fs.String("debug-addr", os.Getenv(debugAddrEnv), "serve Go's runtime profiles (goroutines, heap, …) on `HOST:PORT`, off when empty (env "+debugAddrEnv+")")
	if err := fs.Parse(args); err != nil {
		return errFlagParse
	}
	// Flags given on the command line win over the environment.
	explicit := explicitFlags(fs)
	if !explicit["host"] {
		host = nil
	}
	if !explicit["port"] {
		port = nil
	}
	ctx, stop := stopContext()
	defer stop()
	hosts, err := httpguard.ParseAllowedHosts("--allowed-hosts", *allowedHosts)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*common, host, port)
	if err != nil {
		return err
	}
	if !explicit["metrics-addr"] {
		*metricsAddr = os.Getenv(telemetry.EnvMetricsAddr)
	}
	// Metrics and traces start before the app, whose parts report to them.
	tel, err := telemetry.Start(ctx, telemetry.Config{MetricsAddr: *metricsAddr})
	if err != nil {
		return err
	}
	defer func() { _ = tel.Shutdown(context.Background()) }()
	cfg.Hooks = tel.Hooks
	log := newLogger(stderr, cfg.LogLevel)
	if addr := tel.MetricsAddr(); addr != "" {
		log.Info("metrics", "url", "http://"+addr+"/metrics")
	}
	a, err := startup.Open(ctx, cfg, log, startup.Options{})
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
	go pruneAudit(ctx, a)
	// Close writes the usage counters; if it cannot, the exit code says so.
	return errors.Join(httpserver.Run(ctx, a), a.Close())
}

// stopContext is cancelled by the first SIGINT or SIGTERM; a second one
// ends the process at once.
func stopContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // the signals' default action again
	}()
	return ctx, stop
}

// explicitFlags names the flags given on the command line.
func explicitFlags(fs *flag.FlagSet) map[string]bool {
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	return explicit
}

// auditPruneEvery is how often a running server drops audit events older
// than the retention (audit.DefaultRetention, 400 days).
const auditPruneEvery = 24 * time.Hour

// pruneAudit prunes the audit trail at start and then daily, until ctx
// ends. Several instances pruning at once take turns on the chain's head.
func pruneAudit(ctx context.Context, a *startup.App) {
	t := time.NewTicker(auditPruneEvery)
	defer t.Stop()
	for {
		if n, err := a.Audit.Prune(ctx); err != nil && ctx.Err() == nil {
			a.Log.Warn("audit trail: prune failed", "err", err)
		} else if n > 0 {
			a.Log.Info("audit trail: old events pruned", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
