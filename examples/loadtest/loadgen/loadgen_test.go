package loadgen_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/examples/loadtest/loadgen"
)

// TestRunObservesEveryRequest: Pick chooses the keys, every completed
// request is observed with its code and, when refused, the start of its
// body, and the result counts the same.
func TestRunObservesEveryRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("x-api-key") != "sk-good" {
			http.Error(w, `{"detail":"no"}`, http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("[]"))
	}))
	defer srv.Close()
	var (
		mu      sync.Mutex
		samples []loadgen.Sample
	)
	res, err := loadgen.Run(context.Background(), loadgen.Config{
		URLs:        []string{srv.URL},
		Concurrency: 3,
		Requests:    60,
		Pick: func(rng *rand.Rand) (string, bool) {
			if rng.IntN(2) == 0 {
				return "sk-good", true
			}
			return "sk-bad", false
		},
		Observe: func(s loadgen.Sample) { mu.Lock(); samples = append(samples, s); mu.Unlock() },
	})
	require.NoError(t, err)
	require.Len(t, samples, 60)
	assert.Equal(t, int64(60), res.Status[200]+res.Status[403])
	assert.Zero(t, res.Unexpected)
	for _, s := range samples {
		assert.Equal(t, srv.URL, s.URL)
		assert.False(t, s.Start.IsZero())
		if s.Known {
			assert.Equal(t, 200, s.Code)
			assert.Empty(t, s.Body, "2xx bodies are not kept")
		} else {
			assert.Equal(t, 403, s.Code)
			assert.JSONEq(t, `{"detail":"no"}`, string(s.Body))
		}
	}
}

// TestRunUntilCancelled: without Duration or Requests, Run stops when its
// context is cancelled; incomplete configurations are refused.
func TestRunUntilCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	ten := make(chan struct{})
	var n atomic.Int64
	done := make(chan struct{})
	var res *loadgen.Result
	go func() {
		defer close(done)
		var err error
		res, err = loadgen.Run(ctx, loadgen.Config{URLs: []string{srv.URL}, Keys: []string{"k"}, Concurrency: 2,
			Observe: func(loadgen.Sample) {
				if n.Add(1) == 10 {
					close(ten)
				}
			}})
		assert.NoError(t, err)
	}()
	<-ten // some requests completed
	cancel()
	<-done
	require.NotNil(t, res)
	assert.NotZero(t, res.Status[200])

	_, err := loadgen.Run(context.Background(), loadgen.Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no URLs")
	assert.Contains(t, err.Error(), "concurrency")
	assert.Contains(t, err.Error(), "no keys")
}
