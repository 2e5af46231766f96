package httpserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/keyflow-dev/keyflow/examples/server/internal/config"
	"github.com/keyflow-dev/keyflow/examples/server/internal/flows"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
	"github.com/keyflow-dev/keyflow/secrets"
)

// Run imports the environment for every user, makes sure the demo flow
// exists, and serves until ctx is cancelled (SIGINT/SIGTERM), then shuts down
// gracefully. The caller's Close then writes the usage counters.
func Run(ctx context.Context, a *startup.App) error {
	echo, created, err := prepare(ctx, a)
	if err != nil {
		return err
	}
	h, err := Handler(a, nil)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(a.Config.Host, strconv.Itoa(a.Config.Port)))
	if err != nil {
		return err
	}
	if ip := net.ParseIP(a.Config.Host); a.Config.Auth.AutoLogin && (ip == nil || !ip.IsLoopback()) {
		a.Log.Warn("LANGFLOW_AUTO_LOGIN is on and the server listens beyond loopback: anyone who can open the web UI manages the superuser's keys and variables")
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(a.Log.Handler(), slog.LevelWarn),
	}
	logGuide(a, ln.Addr(), echo, created)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.Log.Info("keyflow listening on http://" + ln.Addr().String())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.Log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// prepare does what a start does before it listens: the environment's
// provider keys imported for every user, the demo flow (one, however many
// instances start) and the warning when nobody can log in.
func prepare(ctx context.Context, a *startup.App) (echo flows.Flow, created bool, err error) {
	users, err := a.Users.Store.All(ctx)
	if err != nil {
		return flows.Flow{}, false, err
	}
	for _, u := range users {
		if err := a.ImportEnv(ctx, u.ID, u.Username); err != nil {
			return flows.Flow{}, false, err
		}
	}
	unlock, err := a.StartupLock(ctx)
	if err != nil {
		return flows.Flow{}, false, err
	}
	echo, created, err = a.Flows.EnsureEcho(ctx, a.Superuser.ID)
	unlock()
	if err != nil {
		return flows.Flow{}, false, err
	}
	a.Users.WarnIfNoLogin(ctx, a.Superuser.ID)
	return echo, created, nil
}

// logGuide logs, before the ready line, what a first run needs to know:
// where the data is, the demo flow, how to make a key, where the UI is.
// Only what this start created is logged as created.
func logGuide(a *startup.App, addr net.Addr, echo flows.Flow, created bool) {
	a.Log.Info("config directory", "path", a.Config.ConfigDir)
	a.Log.Info("database", "url", a.Address.Display)
	if created {
		a.Log.Info("created demo flow", "name", echo.Name, "id", echo.ID)
	} else {
		a.Log.Info("demo flow", "name", echo.Name, "id", echo.ID)
	}
	a.Log.Info("make an API key", "command", APIKeyCommand(a.Config, a.Address.Display))
	a.Log.Info("web UI", "url", browseURL(addr))
}

// APIKeyCommand is the command line that makes an API key in this server's
// database: the program as it was started, api-key, and the --config-dir and
// --database-url that lead to the same data (dbDisplay: without a password).
func APIKeyCommand(cfg config.Config, dbDisplay string) string {
	args := []string{config.Command(os.Args[0]), "api-key"}
	if def, err := secrets.DefaultConfigDir(func(string) string { return "" }); err != nil || def != cfg.ConfigDir {
		args = append(args, "--config-dir", shellQuote(cfg.ConfigDir))
	}
	if cfg.DatabaseURL != "" {
		args = append(args, "--database-url", shellQuote(dbDisplay))
	}
	return strings.Join(args, " ")
}

// browseURL is the web UI's address for a browser: a wildcard listen address
// (0.0.0.0, ::) is shown as localhost.
func browseURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String() + "/"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

// shellQuote quotes s for a POSIX shell when it holds anything but letters,
// digits and -_./:=@%+,.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@%+,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
