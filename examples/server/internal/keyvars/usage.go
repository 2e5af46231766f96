package keyvars

import (
	"context"
	"net/http"
	"time"
)

// CurrentUsage writes this instance's pending API-key usage counts before a
// GET (the key list), so that the list shows every use this instance has
// seen, not the counts as of the last periodic flush (up to 10 s old). Other
// instances' uses appear when they flush. A failed flush is logged by the
// Manager, which keeps the counts; the list is served anyway.
func (s *Services) CurrentUsage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			// Not cut short when the client goes away: a flush that was
			// cancelled half way would be resent as "in doubt".
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
			_ = s.Keys.Flush(ctx)
			cancel()
		}
		next.ServeHTTP(w, r)
	})
}
