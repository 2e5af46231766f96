// Command ratelimit slows down key guessing with keyflow's OnFailure hook and
// golang.org/x/time/rate: each client IP has a budget of failed
// authentications; once it is spent, a small middleware in front answers 429
// before the key is even looked up.
//
//	go run ./examples/ratelimit
//	for i in 1 2 3; do curl -s -H "x-api-key: sk-guess" http://127.0.0.1:8081/; echo; done
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/middleware"
)

func main() {
	keys, err := apikey.NewManager(apikey.Config{}) // an in-memory store
	if err != nil {
		log.Fatal(err)
	}
	defer keys.Close()
	key, _, err := keys.Create(context.Background(), "demo-user", "demo", apikey.CreateOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("key (shown once): %s\n", key)
	h, err := newHandler(keys, 2, time.Minute)
	if err != nil {
		log.Fatal(err)
	}
	log.Print("listening on http://127.0.0.1:8081")
	log.Fatal(http.ListenAndServe("127.0.0.1:8081", h))
}

// newHandler protects a greeting with the key middleware and allows each
// client IP burst failed authentications, then one per every.
func newHandler(keys *apikey.Manager, burst int, every time.Duration) (http.Handler, error) {
	limit := &failureLimiter{ips: map[string]*rate.Limiter{}, burst: burst, every: every}
	auth, err := middleware.New(middleware.Config{Verifier: keys, OnFailure: limit.OnFailure})
	if err != nil {
		return nil, err
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := middleware.FromRequest(r)
		fmt.Fprintf(w, "hello %s\n", p.UserID)
	})
	return limit.Middleware(auth(hello)), nil
}

// failureLimiter keeps one token bucket of failed authentications per client
// IP. It is safe for concurrent use. (A real server also forgets idle IPs.)
type failureLimiter struct {
	mu    sync.Mutex
	ips   map[string]*rate.Limiter
	burst int
	every time.Duration
}

func (l *failureLimiter) limiter(r *http.Request) *rate.Limiter {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.ips[ip]
	if !ok {
		lim = rate.NewLimiter(rate.Every(l.every), l.burst)
		l.ips[ip] = lim
	}
	return lim
}

// OnFailure spends one token for a rejected key; a store outage (503) is not
// the client's fault and costs nothing.
func (l *failureLimiter) OnFailure(r *http.Request, err error) {
	if middleware.IsRejection(err) {
		l.limiter(r).Allow()
	}
}

// Middleware answers 429 while the client's budget is spent.
func (l *failureLimiter) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.limiter(r).Tokens() < 1 {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "60")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = fmt.Fprintln(w, `{"detail":"Too many failed authentication attempts"}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}
