package dbtest

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSQLiteOpensAndWrites(t *testing.T) {
	db := SQLite(t)
	_, err := db.Exec("CREATE TABLE x (v TEXT)")
	require.NoError(t, err)
	_, err = db.Exec("INSERT INTO x VALUES ('a')")
	require.NoError(t, err)
	var n int
	require.NoError(t, db.QueryRow("SELECT count(*) FROM x").Scan(&n))
	require.Equal(t, 1, n)
}

func TestPostgresSchemasAreIsolated(t *testing.T) {
	a, b := Postgres(t), Postgres(t)
	_, err := a.Exec("CREATE TABLE x (v TEXT)")
	require.NoError(t, err)
	_, err = b.Exec("CREATE TABLE x (v TEXT)")
	require.NoError(t, err, "a second test's schema must not see the first's table")
}

// startEcho serves an echo on a free port until the test ends and returns
// its address.
func startEcho(t *testing.T) string {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = echo.Close() })
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return echo.Addr().String()
}

func TestProxyCutAndRestore(t *testing.T) {
	p := NewProxy(t, startEcho(t))
	roundTrip := func() error {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		return err
	}
	require.NoError(t, roundTrip())

	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("x"))
	require.NoError(t, err)
	_, err = io.ReadFull(c, make([]byte, 1))
	require.NoError(t, err)
	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, err = c.Read(make([]byte, 1))
	require.Error(t, err, "an open connection is closed by Cut")
	require.Error(t, roundTrip(), "new connections are refused while cut")

	p.Restore()
	require.NoError(t, roundTrip())
}

func TestProxyRefuseAndDrop(t *testing.T) {
	p := NewProxy(t, startEcho(t))
	open := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		_, err = c.Write([]byte("x"))
		require.NoError(t, err)
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = io.ReadFull(c, make([]byte, 1))
		require.NoError(t, err, "forwarded")
		return c
	}
	alive := func(c net.Conn) bool {
		if _, err := c.Write([]byte("y")); err != nil {
			return false
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err := io.ReadFull(c, make([]byte, 1))
		return err == nil
	}
	a, b := open(), open()
	p.Refuse()
	assert.True(t, alive(a), "Refuse keeps open connections")
	c, err := net.Dial("tcp", p.Addr())
	if err == nil { // accepted, then closed at once
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		_, err = c.Read(make([]byte, 1))
		_ = c.Close()
	}
	assert.Error(t, err, "and refuses new ones")
	p.Restore()

	assert.Equal(t, 2, p.Drop(5), "two were open")
	assert.False(t, alive(a))
	assert.False(t, alive(b))
	assert.True(t, alive(open()), "new connections are still forwarded")
}
