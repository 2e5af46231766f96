// Command loadtest drives one or more keyflow reference servers with
// authenticated requests and reports throughput and latency. Its engine is
// the package loadgen, which tests import for steady load with a record of
// every answer.
//
//	go run ./examples/loadtest -url http://127.0.0.1:7861,http://127.0.0.1:7862 \
//	    -keys-file keys.txt -c 32 -d 10s -unknown 0.1
//
// Requests go round-robin to the target URLs, each with one key in the
// x-api-key header: a key from -keys/-keys-file, or, for a share -unknown of
// the requests, a fresh well-formed key that no server knows. It shows a
// progress bar on stderr while it runs, then prints a latency histogram
// (text bars), p50/p90/p99/max, the request rate, and the count of each
// status code. Requests with a known key should get 2xx, the others 401 or
// 403; anything else is counted as unexpected. With -no-auth (a target that
// checks no key, such as examples/floor), every request should get 2xx.
//
// -method and -body make other requests, e.g. a flow run:
//
//	go run ./examples/loadtest -url http://127.0.0.1:7860 -keys-file keys.txt \
//	    -method POST -path /api/v1/run/FLOW_ID -body '{"input_value": "hi"}'
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/keyflow-dev/keyflow/examples/loadtest/loadgen"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is the validated command line.
type config struct {
	urls        []string
	keys        []string
	concurrency int
	duration    time.Duration
	requests    int64 // > 0: stop after this many requests instead
	unknown     float64
	path        string
	method      string
	header      string
	body        string // sent as application/json; "": no body
	noAuth      bool   // the target checks no key: every request should get 2xx
	timeout     time.Duration
	progress    bool
}

// parseFlags reads and validates the command line.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	urls := fs.String("url", "", "target base URLs, comma-separated, used round-robin (required)")
	keys := fs.String("keys", "", "API keys, comma-separated")
	keysFile := fs.String("keys-file", "", "file with one API key per line (blank lines and # comments ignored)")
	fs.IntVar(&c.concurrency, "c", 16, "concurrent requests")
	fs.DurationVar(&c.duration, "d", 10*time.Second, "how long to run (ignored with -n)")
	fs.Int64Var(&c.requests, "n", 0, "number of requests (0: run for -d)")
	fs.Float64Var(&c.unknown, "unknown", 0, "share of requests (0…1) sent with an unknown key")
	fs.StringVar(&c.path, "path", "/api/v1/flows/", "request path, appended to each URL")
	fs.StringVar(&c.method, "method", http.MethodGet, "HTTP method")
	fs.StringVar(&c.header, "header", "x-api-key", "header that carries the key")
	fs.StringVar(&c.body, "body", "", "request body, sent as application/json")
	fs.BoolVar(&c.noAuth, "no-auth", false, "the target checks no key (e.g. examples/floor): every request should get 2xx")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.BoolVar(&c.progress, "progress", true, "show a progress bar on stderr")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var errs []error
	for u := range strings.SplitSeq(*urls, ",") {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u == "" {
			continue
		}
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			errs = append(errs, fmt.Errorf("-url %q: want http:// or https://", u))
		}
		c.urls = append(c.urls, u)
	}
	if len(c.urls) == 0 {
		errs = append(errs, errors.New("-url is required"))
	}
	for k := range strings.SplitSeq(*keys, ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.keys = append(c.keys, k)
		}
	}
	if *keysFile != "" {
		fromFile, err := readKeys(*keysFile)
		if err != nil {
			errs = append(errs, err)
		}
		c.keys = append(c.keys, fromFile...)
	}
	switch {
	case c.unknown < 0 || c.unknown > 1:
		errs = append(errs, fmt.Errorf("-unknown must be within 0…1, got %v", c.unknown))
	case len(c.keys) == 0 && c.unknown < 1:
		errs = append(errs, errors.New("no keys: give -keys or -keys-file (or -unknown 1)"))
	}
	if c.concurrency < 1 {
		errs = append(errs, fmt.Errorf("-c must be at least 1, got %d", c.concurrency))
	}
	if c.requests < 0 {
		errs = append(errs, fmt.Errorf("-n must not be negative, got %d", c.requests))
	}
	if c.requests == 0 && c.duration <= 0 {
		errs = append(errs, errors.New("-d must be positive (or give -n)"))
	}
	if c.timeout <= 0 {
		errs = append(errs, errors.New("-timeout must be positive"))
	}
	if !strings.HasPrefix(c.path, "/") {
		errs = append(errs, fmt.Errorf("-path must start with /, got %q", c.path))
	}
	if c.header == "" {
		errs = append(errs, errors.New("-header must not be empty"))
	}
	return c, errors.Join(errs...)
}

func readKeys(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-keys-file: %w", err)
	}
	defer func() { _ = f.Close() }()
	var keys []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-keys-file: %w", err)
	}
	return keys, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 2
	}
	res, err := load(context.Background(), cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 1
	}
	printResult(res, stdout)
	if res.Unexpected > 0 {
		return 1
	}
	return 0
}

// result is what a run measured.
type result = loadgen.Result

func load(ctx context.Context, cfg config, stderr io.Writer) (*result, error) {
	var done atomic.Int64
	stopBar := startProgress(cfg, &done, stderr)
	defer stopBar()
	return loadgen.Run(ctx, loadgen.Config{
		URLs:        cfg.urls,
		Keys:        cfg.keys,
		Unknown:     cfg.unknown,
		Concurrency: cfg.concurrency,
		Duration:    cfg.duration,
		Requests:    cfg.requests,
		Path:        cfg.path,
		Method:      cfg.method,
		Header:      cfg.header,
		Body:        cfg.body,
		NoAuth:      cfg.noAuth,
		Timeout:     cfg.timeout,
		Observe: func(s loadgen.Sample) {
			if !s.CutOff {
				done.Add(1)
			}
		},
	})
}

// startProgress shows a progress bar (requests done of -n, or milliseconds
// elapsed of -d) until the returned function is called.
func startProgress(cfg config, done *atomic.Int64, w io.Writer) func() {
	if !cfg.progress {
		return func() {}
	}
	max, desc := cfg.requests, "requests"
	if max == 0 {
		max, desc = cfg.duration.Milliseconds(), "ms"
	}
	bar := progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("loadtest ("+desc+")"),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	stop := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				_ = bar.Finish()
				return
			case <-t.C:
				if cfg.requests > 0 {
					_ = bar.Set64(done.Load())
				} else {
					_ = bar.Set64(min(time.Since(start), cfg.duration).Milliseconds())
				}
				bar.Describe(fmt.Sprintf("loadtest (%s) %.0f req/s", desc, float64(done.Load())/time.Since(start).Seconds()))
			}
		}
	}()
	return func() { close(stop); <-finished }
}

// percentile returns the p-quantile (0…1) of sorted, nearest-rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// bucket is one histogram bar: latencies in [lo, hi).
type bucket struct {
	lo, hi time.Duration
	n      int64
}

// histogram sorts lat and counts it in buckets whose bounds double from
// 50 µs (the last bucket is open-ended), dropping empty buckets at both ends.
func histogram(lat []time.Duration) []bucket {
	if len(lat) == 0 {
		return nil
	}
	slices.Sort(lat)
	var bs []bucket
	lo := time.Duration(0)
	hi := 50 * time.Microsecond
	i := 0
	for i < len(lat) {
		b := bucket{lo: lo, hi: hi}
		for i < len(lat) && lat[i] < hi {
			b.n++
			i++
		}
		bs = append(bs, b)
		lo, hi = hi, hi*2
		if hi > time.Minute {
			bs = append(bs, bucket{lo: lo, hi: 0, n: int64(len(lat) - i)})
			break
		}
	}
	first := slices.IndexFunc(bs, func(b bucket) bool { return b.n > 0 })
	return bs[first:]
}

// bars renders buckets as text bars of at most width characters.
func bars(bs []bucket, total int64, width int) string {
	var most int64
	for _, b := range bs {
		most = max(most, b.n)
	}
	var sb strings.Builder
	for _, b := range bs {
		hi := "∞"
		if b.hi > 0 {
			hi = b.hi.String()
		}
		n := 0
		if most > 0 {
			n = int((b.n*int64(width) + most - 1) / most)
		}
		fmt.Fprintf(&sb, "%9s – %-9s %8d %5.1f%% %s\n", b.lo, hi, b.n, 100*float64(b.n)/float64(max(total, 1)), strings.Repeat("█", n))
	}
	return sb.String()
}

func printResult(r *result, w io.Writer) {
	lat := r.Latencies
	hist := histogram(lat) // sorts lat
	total := int64(len(lat))
	fmt.Fprintf(w, "%d requests in %v: %.0f req/s\n\n", total, r.Elapsed.Round(time.Millisecond), float64(total)/r.Elapsed.Seconds())
	fmt.Fprint(w, "latency histogram\n", bars(hist, total, 40), "\n")
	us := func(d time.Duration) time.Duration { return d.Round(time.Microsecond) }
	fmt.Fprintf(w, "p50 %v  p90 %v  p99 %v  max %v\n", us(percentile(lat, 0.50)), us(percentile(lat, 0.90)), us(percentile(lat, 0.99)), us(lat[len(lat)-1]))
	codes := make([]int, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	fmt.Fprint(w, "status:")
	for _, c := range codes {
		name := fmt.Sprint(c)
		if c == 0 {
			name = "error"
		}
		fmt.Fprintf(w, " %s×%d", name, r.Status[c])
	}
	fmt.Fprintf(w, "\nunexpected: %d\n", r.Unexpected)
}
