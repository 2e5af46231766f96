package main

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/keyflow-dev/keyflow/apikey"
)

func TestWelchT(t *testing.T) {
	var a, b welford
	for _, x := range []float64{1, 2, 3, 4, 5} {
		a.add(x)
	}
	for _, x := range []float64{3, 4, 5, 6, 7} {
		b.add(x)
	}
	assert.InDelta(t, 3, a.mean, 1e-12)
	assert.InDelta(t, 2.5, a.variance(), 1e-12)
	// (3-5)/sqrt(2.5/5+2.5/5) = -2
	assert.InDelta(t, -2, welchT(a, b), 1e-12)
	assert.Zero(t, welchT(a, a))
	assert.True(t, math.IsNaN(welchT(welford{}, b)))
}

func TestChangeLast(t *testing.T) {
	for range 200 {
		k, err := apikey.Langflow.Generate()
		assert.NoError(t, err)
		w := changeLast(k)
		assert.NotEqual(t, k, w)
		assert.Equal(t, k[:len(k)-1], w[:len(w)-1])
		assert.NoError(t, apikey.Langflow.Check(w), "still well-formed, so Verify hashes and looks it up")
	}
}

func TestFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 2, run([]string{"-n", "10"}, &out, &errOut))
	assert.Contains(t, errOut.String(), "-n ≥ 1000")
	assert.Equal(t, 2, run([]string{"-bogus"}, &out, &errOut))
}

// The positive control: measure sees a naive comparison leak.
func TestMeasureSeesALeak(t *testing.T) {
	secret := string(make([]byte, 4096))
	last, first := []byte(secret), []byte(secret)
	last[4095], first[0] = 1, 1
	var sink bool
	r := measure(options{n: 4000, inner: 4, seed: 1}, []string{string(last)}, []string{string(first)},
		func(s string) { sink = sink != (s == secret) })
	assert.Greater(t, r.maxT, 4.5, "a 4 KiB early-exit comparison must show")
	assert.Greater(t, r.mean0, r.mean1)
}
