package main

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/examples/server/internal/startup"
)

// TestCloseBoundedWhenDatabaseHangs: the usage flush at shutdown gives up
// soon after startup.ShutdownFlushTimeout when PostgreSQL stops answering (a network
// partition: connections stay open, nothing comes back), so SIGTERM ends
// the process instead of leaving it waiting for the database forever.
func TestCloseBoundedWhenDatabaseHangs(t *testing.T) {
	dbURL := sharedDatabase(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	hole := newStallProxy(t, u.Host)
	u.Host = hole.addr
	cfg := instanceConfig(t, u.String()) // no connect_timeout: only the context bounds a call
	cfg.ChangeMaxLag = 0
	a, err := openApp(context.Background(), cfg, quietLog())
	require.NoError(t, err)

	key, _, err := a.Keys.Create(context.Background(), a.Superuser.ID, "k", apikey.CreateOptions{})
	require.NoError(t, err)
	_, err = a.Keys.Verify(context.Background(), key) // a use waiting to be flushed
	require.NoError(t, err)

	defer func(d time.Duration) { startup.ShutdownFlushTimeout = d }(startup.ShutdownFlushTimeout)
	startup.ShutdownFlushTimeout = 300 * time.Millisecond
	hole.stall()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- a.Close() }()
	select {
	case err := <-done:
		assert.Error(t, err, "the counts could not be written: say so")
		t.Logf("Close returned after %v: %v", time.Since(start), err)
	case <-time.After(30 * time.Second): // pgx adds up to ~5 s to cancel the stalled query
		t.Fatal("Close still waiting for the database 30 s after shutdown began")
	}
}

// stallProxy forwards TCP connections until stalled: then it keeps every
// connection open but forwards nothing more, and answers new ones never.
type stallProxy struct {
	addr    string
	mu      sync.Mutex
	stalled chan struct{} // closed by stall
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{addr: ln.Addr().String(), stalled: make(chan struct{})}
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	forward := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			select {
			case <-p.stalled:
				_, _ = io.Copy(io.Discard, src) // hold the connection, answer nothing
				return
			default:
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = dst.Close()
				return
			}
		}
	}
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, in)
			p.mu.Unlock()
			select {
			case <-p.stalled:
				continue // accepted, never answered
			default:
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, out)
			p.mu.Unlock()
			go forward(out, in)
			go forward(in, out)
		}
	}()
	return p
}

func (p *stallProxy) stall() { close(p.stalled) }
