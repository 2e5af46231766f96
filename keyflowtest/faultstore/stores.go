package faultstore

import (
	"context"
	"slices"
	"sync"

	"github.com/keyflow-dev/keyflow/apikey"
	"github.com/keyflow-dev/keyflow/secrets"
	"github.com/keyflow-dev/keyflow/variables"
)

// KeyStore is an apikey.Store whose calls go through an Injector. Operation
// names are the method names: Insert, ByHash, ListByUser, Delete, SetActive,
// AddUsage.
type KeyStore struct {
	Store apikey.Store // the store the calls reach when Inj lets them
	Inj   *Injector    // decides which calls fail, wait or pass

	mu      sync.Mutex
	batches [][]apikey.Usage
}

var _ apikey.Store = (*KeyStore)(nil)

// Keys wraps s with inj.
func Keys(s apikey.Store, inj *Injector) *KeyStore { return &KeyStore{Store: s, Inj: inj} }

// Insert implements apikey.Store.
func (k *KeyStore) Insert(ctx context.Context, r apikey.Record) error {
	return call(ctx, k.Inj, "Insert", func() error { return k.Store.Insert(ctx, r) })
}

// ByHash implements apikey.Store.
func (k *KeyStore) ByHash(ctx context.Context, h apikey.Hash) (rec apikey.Record, err error) {
	err = call(ctx, k.Inj, "ByHash", func() (err error) { rec, err = k.Store.ByHash(ctx, h); return })
	if err != nil {
		return apikey.Record{}, err
	}
	return rec, nil
}

// ListByUser implements apikey.Store.
func (k *KeyStore) ListByUser(ctx context.Context, userID string) (recs []apikey.Record, err error) {
	err = call(ctx, k.Inj, "ListByUser", func() (err error) { recs, err = k.Store.ListByUser(ctx, userID); return })
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// Delete implements apikey.Store.
func (k *KeyStore) Delete(ctx context.Context, userID, id string) (rec apikey.Record, err error) {
	err = call(ctx, k.Inj, "Delete", func() (err error) { rec, err = k.Store.Delete(ctx, userID, id); return })
	if err != nil {
		return apikey.Record{}, err
	}
	return rec, nil
}

// SetActive implements apikey.Store.
func (k *KeyStore) SetActive(ctx context.Context, userID, id string, active bool) (rec apikey.Record, err error) {
	err = call(ctx, k.Inj, "SetActive", func() (err error) { rec, err = k.Store.SetActive(ctx, userID, id, active); return })
	if err != nil {
		return apikey.Record{}, err
	}
	return rec, nil
}

// AddUsage implements apikey.Store.
// Every batch that reaches the wrapped store is recorded (UsageBatches).
func (k *KeyStore) AddUsage(ctx context.Context, batch []apikey.Usage) error {
	return call(ctx, k.Inj, "AddUsage", func() error {
		k.mu.Lock()
		k.batches = append(k.batches, slices.Clone(batch))
		k.mu.Unlock()
		return k.Store.AddUsage(ctx, batch)
	})
}

// UsageBatches returns copies of the AddUsage batches that reached the
// wrapped store, oldest first.
func (k *KeyStore) UsageBatches() [][]apikey.Usage {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([][]apikey.Usage, len(k.batches))
	for i, b := range k.batches {
		out[i] = slices.Clone(b)
	}
	return out
}

// VariableStore is a variables.Store (and so a secrets.CiphertextStore)
// whose calls go through an Injector. Operation names are the method names:
// Create, Get, GetByName, ListByUser, Update, Delete, ListCiphertexts,
// SwapCiphertext.
type VariableStore struct {
	Store variables.Store // the store the calls reach when Inj lets them
	Inj   *Injector       // decides which calls fail, wait or pass
}

var _ variables.Store = (*VariableStore)(nil)

// Variables wraps s with inj.
func Variables(s variables.Store, inj *Injector) *VariableStore {
	return &VariableStore{Store: s, Inj: inj}
}

// Create implements variables.Store.
func (v *VariableStore) Create(ctx context.Context, x variables.Variable) error {
	return call(ctx, v.Inj, "Create", func() error { return v.Store.Create(ctx, x) })
}

// Get implements variables.Store.
func (v *VariableStore) Get(ctx context.Context, userID, id string) (x variables.Variable, err error) {
	err = call(ctx, v.Inj, "Get", func() (err error) { x, err = v.Store.Get(ctx, userID, id); return })
	if err != nil {
		return variables.Variable{}, err
	}
	return x, nil
}

// GetByName implements variables.Store.
func (v *VariableStore) GetByName(ctx context.Context, userID, name string) (x variables.Variable, err error) {
	err = call(ctx, v.Inj, "GetByName", func() (err error) { x, err = v.Store.GetByName(ctx, userID, name); return })
	if err != nil {
		return variables.Variable{}, err
	}
	return x, nil
}

// ListByUser implements variables.Store.
func (v *VariableStore) ListByUser(ctx context.Context, userID string) (xs []variables.Variable, err error) {
	err = call(ctx, v.Inj, "ListByUser", func() (err error) { xs, err = v.Store.ListByUser(ctx, userID); return })
	if err != nil {
		return nil, err
	}
	return xs, nil
}

// Update implements variables.Store.
func (v *VariableStore) Update(ctx context.Context, prev, next variables.Variable) error {
	return call(ctx, v.Inj, "Update", func() error { return v.Store.Update(ctx, prev, next) })
}

// Delete implements variables.Store.
func (v *VariableStore) Delete(ctx context.Context, userID, id string) error {
	return call(ctx, v.Inj, "Delete", func() error { return v.Store.Delete(ctx, userID, id) })
}

// ListCiphertexts implements secrets.CiphertextStore.
func (v *VariableStore) ListCiphertexts(ctx context.Context, after string, limit int) (cs []secrets.Ciphertext, err error) {
	err = call(ctx, v.Inj, "ListCiphertexts", func() (err error) { cs, err = v.Store.ListCiphertexts(ctx, after, limit); return })
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// SwapCiphertext implements secrets.CiphertextStore.
func (v *VariableStore) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (swapped bool, err error) {
	err = call(ctx, v.Inj, "SwapCiphertext", func() (err error) {
		swapped, err = v.Store.SwapCiphertext(ctx, id, oldToken, newToken)
		return
	})
	if err != nil {
		return false, err
	}
	return swapped, nil
}
