// Command floor is the physical floor of a keyflow reference-server request:
// a bare net/http server that answers the two hot routes with fixed bodies,
// with no authentication and no database.
//
//	GET  /api/v1/flows/                 the body of -flows
//	POST /api/v1/run/{flow_id_or_name}  the body of -run (the request body is read)
//
// The bodies are files captured from a reference server (scripts/floorbench.sh
// does that), so the floor writes exactly as many bytes as keyflow does.
// Anything else gets 404. It logs one line, "floor listening on
// http://HOST:PORT", when ready, and stops on SIGINT or SIGTERM.
//
//	go run ./examples/floor -addr 127.0.0.1:0 -flows flows.json -run run.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stderr))
}

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	flowsFile := fs.String("flows", "", "file with the body of GET /api/v1/flows/ (required)")
	runFile := fs.String("run", "", "file with the body of POST /api/v1/run/{flow} (required)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if *flowsFile == "" || *runFile == "" || fs.NArg() > 0 {
		log.Error("floor: -flows and -run are required, and nothing else")
		return 2
	}
	flows, err := os.ReadFile(*flowsFile)
	if err != nil {
		log.Error("floor: read -flows", "err", err)
		return 1
	}
	runBody, err := os.ReadFile(*runFile)
	if err != nil {
		log.Error("floor: read -run", "err", err)
		return 1
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("floor: listen", "err", err)
		return 1
	}
	srv := &http.Server{Handler: handler(flows, runBody), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("floor listening on http://" + ln.Addr().String())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Error("floor: serve", "err", err)
		return 1
	}
	return 0
}

// handler answers the two routes with their fixed bodies.
func handler(flows, runBody []byte) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/flows/{$}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, flows)
	})
	mux.HandleFunc("POST /api/v1/run/{flow_id_or_name}", func(w http.ResponseWriter, r *http.Request) {
		// The reference server reads the request; so does the floor.
		_, _ = io.Copy(io.Discard, r.Body)
		writeJSON(w, runBody)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)))
	_, _ = w.Write(body)
}
