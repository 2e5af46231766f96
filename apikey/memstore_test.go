package apikey_test

import (
	"testing"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/apikey/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) apikey.Store { return apikey.NewMemoryStore() })
}

func TestMemoryStoreZeroValueConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) apikey.Store { return new(apikey.MemoryStore) })
}

func TestMemoryLimiterConformance(t *testing.T) {
	storetest.RunLimiter(t, func(*testing.T) apikey.Limiter { return apikey.NewMemoryLimiter() })
	storetest.RunLimiter(t, func(*testing.T) apikey.Limiter { return new(apikey.MemoryLimiter) })
}
