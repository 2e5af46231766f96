package cli

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// debugAddrEnv names the environment variable of run's --debug-addr.
const debugAddrEnv = "KEYFLOW_DEBUG_ADDR"

// startDebug serves Go's runtime profiles (net/http/pprof: goroutines,
// heap, CPU, …) on addr, a HOST:PORT of its own that should stay on
// loopback: they show the program's internals. It is off unless
// --debug-addr or KEYFLOW_DEBUG_ADDR names an address. It returns the
// function that stops it. The goroutine count is the first line of
// /debug/pprof/goroutine?debug=1 ("goroutine profile: total N").
func startDebug(addr string, log *slog.Logger) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("debug endpoint stopped", "err", err)
		}
	}()
	log.Info("debug endpoint (runtime profiles) on http://" + ln.Addr().String() + "/debug/pprof/")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
