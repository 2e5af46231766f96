package faillog_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"

	"github.com/keyflow-dev/keyflow/faillog"
)

// A handler of your own that answers 503 when its database fails: during an
// outage it logs the first failure at once and then a summary every 10 s,
// not one line per request.
func Example() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // a stable output for this example
			}
			return a
		},
	}))
	failures := faillog.New("orders: database unavailable; answering 503", 0)
	handler := func(w http.ResponseWriter, r *http.Request, err error) {
		failures.Failure(r.Context(), logger, "path", r.URL.Path, "err", err)
		http.Error(w, "try again later", http.StatusServiceUnavailable)
	}
	r, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "/orders", nil)
	for range 1000 {
		handler(discard{}, r, errors.New("connection refused"))
	}
	// Output:
	// level=ERROR msg="orders: database unavailable; answering 503" path=/orders err="connection refused" repeats="counted, logged at most every 10s"
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
