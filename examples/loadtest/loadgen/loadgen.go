// Package loadgen drives keyflow servers with authenticated requests. It is
// the engine of the loadtest command, and a library for tests that need
// steady load and a record of every answer (the fault suite in
// examples/faults).
//
// Requests go round-robin to the target URLs, each with one key in a header:
// a key from Config.Keys, or, for a share Config.Unknown of them, a fresh
// well-formed key that no server knows; Config.Pick replaces that choice.
// Requests with a known key are expected to get 2xx, the others 401 or 403;
// anything else is counted as unexpected.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyflow-dev/keyflow/apikey"
)

// Config configures Run. URLs and Concurrency are required, and Keys unless
// Unknown is 1 or Pick is set.
type Config struct {
	// URLs are the servers' base URLs (no trailing slash), used round-robin.
	URLs []string
	// Keys are the known keys, picked at random.
	Keys []string
	// Unknown is the share (0…1) of requests sent with a key no server knows.
	Unknown float64
	// Pick, when set, chooses each request's key instead of Keys and
	// Unknown, and says whether it is known (a 2xx is expected). It is
	// called concurrently by the workers, each with its own rng.
	Pick func(rng *rand.Rand) (key string, known bool)
	// Concurrency is the number of requests in flight.
	Concurrency int
	// Duration ends the run (ignored when Requests > 0). 0 with Requests 0:
	// run until the context is cancelled.
	Duration time.Duration
	// Requests, when > 0, ends the run after that many requests.
	Requests int64
	// Path is appended to each URL; "": /api/v1/flows/.
	Path string
	// Method is the HTTP method; "": GET.
	Method string
	// Header carries the key; "": x-api-key.
	Header string
	// Body, when not "", is every request's body, sent as application/json.
	Body string
	// NoAuth says the target checks no key (such as examples/floor): every
	// request is expected to get 2xx, whatever its key.
	NoAuth bool
	// Timeout bounds one request; 0: 10 s.
	Timeout time.Duration
	// Observe, when set, is called after every completed request with what
	// happened, on the worker's goroutine (so concurrently): it must be safe
	// for concurrent use, and quick.
	Observe func(Sample)
}

// Sample is one completed request.
type Sample struct {
	URL   string    // the base URL it went to
	Key   string    // the key it carried
	Known bool      // whether a 2xx was expected
	Start time.Time // when it was sent
	// Latency is how long it took to the end of the body.
	Latency time.Duration
	// Code is the status code, 0 when the request failed (Err says why).
	Code int
	Err  error
	// Body is the start (up to 512 bytes) of the body of a non-2xx answer.
	Body []byte
	// CutOff: the request was still in flight when the run ended, and was
	// abandoned (Code 0). The server may have handled it all the same.
	CutOff bool
}

// Result is what a run measured.
type Result struct {
	Elapsed    time.Duration
	Latencies  []time.Duration // one per completed request, unsorted
	Status     map[int]int64   // by status code; 0: transport error
	Unexpected int64           // known key not 2xx, or unknown key not 401/403
}

// Expected reports whether code is the answer a request with a known
// (or unknown) key should get.
func Expected(code int, known bool) bool {
	if known {
		return code >= 200 && code < 300
	}
	return code == http.StatusUnauthorized || code == http.StatusForbidden
}

// bodySample is how much of a non-2xx body a Sample keeps.
const bodySample = 512

func (cfg *Config) defaults() error {
	if cfg.Path == "" {
		cfg.Path = "/api/v1/flows/"
	}
	if cfg.Method == "" {
		cfg.Method = http.MethodGet
	}
	if cfg.Header == "" {
		cfg.Header = "x-api-key"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	var errs []error
	if len(cfg.URLs) == 0 {
		errs = append(errs, errors.New("no URLs"))
	}
	if cfg.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be at least 1, got %d", cfg.Concurrency))
	}
	if cfg.Pick == nil && len(cfg.Keys) == 0 && cfg.Unknown < 1 {
		errs = append(errs, errors.New("no keys"))
	}
	return errors.Join(errs...)
}

// Run sends requests until cfg's end (Duration or Requests) or until ctx is
// cancelled, and returns what it measured. Requests cut off by the end of
// the run are not counted in the Result, but are observed (Sample.CutOff),
// since the server may have handled them. It fails when cfg is incomplete
// or no request completed.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Concurrency, IdleConnTimeout: time.Minute}
	client := &http.Client{Transport: tr, Timeout: cfg.Timeout}
	defer tr.CloseIdleConnections()

	if cfg.Requests == 0 && cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	var (
		issued atomic.Int64
		mu     sync.Mutex
		res    = &Result{Status: map[int]int64{}}
		wg     sync.WaitGroup
	)
	start := time.Now()
	for w := range cfg.Concurrency {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			status := map[int]int64{}
			var unexpected int64
			rng := rand.New(rand.NewPCG(uint64(w), uint64(start.UnixNano())))
			for ctx.Err() == nil {
				n := issued.Add(1)
				if cfg.Requests > 0 && n > cfg.Requests {
					break
				}
				key, known := cfg.pick(rng)
				s := Sample{URL: cfg.URLs[int(n)%len(cfg.URLs)], Key: key, Known: known, Start: time.Now()}
				s.Code, s.Body, s.Err = do(ctx, client, cfg, s.URL+cfg.Path, key)
				if s.Code == 0 && ctx.Err() != nil { // cut off by the end of the run
					if cfg.Observe != nil {
						s.Latency, s.CutOff = time.Since(s.Start), true
						cfg.Observe(s)
					}
					break
				}
				s.Latency = time.Since(s.Start)
				lat = append(lat, s.Latency)
				status[s.Code]++
				if !Expected(s.Code, known || cfg.NoAuth) {
					unexpected++
				}
				if cfg.Observe != nil {
					cfg.Observe(s)
				}
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			for c, k := range status {
				res.Status[c] += k
			}
			res.Unexpected += unexpected
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	if len(res.Latencies) == 0 {
		return nil, errors.New("loadgen: no request completed")
	}
	return res, nil
}

// pick returns the request's key and whether it is known.
func (cfg *Config) pick(rng *rand.Rand) (string, bool) {
	if cfg.Pick != nil {
		return cfg.Pick(rng)
	}
	if len(cfg.Keys) == 0 || rng.Float64() < cfg.Unknown {
		k, err := apikey.Langflow.Generate()
		if err != nil {
			return "sk-unknown", false
		}
		return k, false
	}
	return cfg.Keys[rng.IntN(len(cfg.Keys))], true
}

// do sends one request and returns its status code (0 on a transport error,
// with the error) and the start of a non-2xx body. The body is drained so
// that the connection is reused.
func do(ctx context.Context, client *http.Client, cfg Config, url, key string) (int, []byte, error) {
	var reqBody io.Reader
	if cfg.Body != "" {
		reqBody = strings.NewReader(cfg.Body)
	}
	req, err := http.NewRequestWithContext(ctx, cfg.Method, url, reqBody)
	if err != nil {
		return 0, nil, err
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set(cfg.Header, key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var body []byte
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, bodySample))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, body, nil
}
