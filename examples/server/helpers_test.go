package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

// openApp opens the server on cfg, as every subcommand does.
func openApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*startup.App, error) {
	return startup.Open(ctx, cfg, log, startup.Options{})
}

// ensureEcho returns the superuser's demo flow, creating it when missing.
func ensureEcho(ctx context.Context, a *startup.App) (flows.Flow, error) {
	f, _, err := a.Flows.EnsureEcho(ctx, a.Superuser.ID)
	return f, err
}

// newLogger writes text logs to w, as the server does to stderr.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
