package variables_test

import (
	"testing"

	"github.com/keyflow-dev/keyflow/variables"
	"github.com/keyflow-dev/keyflow/variables/storetest"
)

func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) variables.Store { return variables.NewMemoryStore() })
}

// The zero MemoryStore is usable, as apikey's is.
func TestZeroMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) variables.Store { return new(variables.MemoryStore) })
}
