package apikey

import (
	"sync"
	"sync/atomic"
	"time"
)

// coarseClock is a millisecond clock for the verification hot path, where
// time.Now costs as much as the rest of a cached verification on some virtual
// machines. A goroutine stores the time every millisecond while the clock is
// being read, and stops after a second without readers; the next reader
// restarts it. Readers then see a time at most about a millisecond old: the
// resolution of cache expiry, key expiry and last_used_at.
type coarseClock struct {
	now     atomic.Int64 // Unix nanoseconds
	running atomic.Bool
	read    atomic.Bool // read since the ticker last looked

	mu     sync.Mutex // guards starting and stopping
	closed bool
	stop   chan struct{}
}

const (
	clockTick = time.Millisecond
	clockIdle = 1000 // ticks without a reader before the goroutine stops
)

// Now returns the current time in Unix nanoseconds, within a millisecond.
func (c *coarseClock) Now() int64 {
	if c.running.Load() {
		if !c.read.Load() {
			c.read.Store(true)
		}
		return c.now.Load()
	}
	return c.start()
}

func (c *coarseClock) start() int64 {
	t := time.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.running.Load() {
		return t
	}
	c.now.Store(t)
	c.read.Store(true)
	c.stop = make(chan struct{})
	c.running.Store(true)
	go c.run(c.stop)
	return t
}

func (c *coarseClock) run(stop chan struct{}) {
	t := time.NewTicker(clockTick)
	defer t.Stop()
	for idle := 0; ; {
		select {
		case <-stop:
			return
		case <-t.C:
			c.now.Store(time.Now().UnixNano())
			if idle++; idle < clockIdle {
				continue
			}
			idle = 0
			if c.read.Swap(false) {
				continue
			}
			c.mu.Lock()
			if c.stop == stop { // not closed meanwhile
				c.running.Store(false)
				c.stop = nil
			}
			c.mu.Unlock()
			return
		}
	}
}

// close stops the goroutine for good; Now then reads time.Now directly.
func (c *coarseClock) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
	c.running.Store(false)
}
