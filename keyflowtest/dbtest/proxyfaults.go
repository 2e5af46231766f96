package dbtest

import "math/rand/v2"

// Refuse makes the proxy refuse new connections while keeping the open
// ones, as a database server that is shutting down does; Restore undoes it.
// With pg_terminate_backend on the open ones' backends, it is a PostgreSQL
// restart as the clients behind the proxy see it.
func (p *Proxy) Refuse() {
	p.mu.Lock()
	p.down = true
	p.mu.Unlock()
}

// Drop closes n forwarded connections chosen at random (fewer if fewer are
// open), in both directions, wherever their conversation is: a connection
// cut mid-query. New connections are still forwarded. It returns how many it
// closed.
func (p *Proxy) Drop(n int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	dropped := 0
	for ; dropped < n && len(p.conns) >= 2; dropped++ {
		i := 2 * rand.IntN(len(p.conns)/2) // conns holds (client, server) pairs
		_ = p.conns[i].Close()
		_ = p.conns[i+1].Close()
		p.conns = append(p.conns[:i], p.conns[i+2:]...)
	}
	return dropped
}
