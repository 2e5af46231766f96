package variables

import (
	"context"
	"time"

	"github.com/keyflow-dev/keyflow/observe"
	"github.com/keyflow-dev/keyflow/secrets"
)

// observedStore reports every call to s through h (ServiceConfig.Hooks):
// VariableAccessed for each, and a store-read span around each read.
type observedStore struct {
	s Store
	h observe.Hooks
}

// read starts a span for a read named op.
func (o observedStore) read(ctx context.Context, op string) (context.Context, time.Time) {
	return o.h.StoreReadStart(ctx, observe.StoreRead{Store: "variables", Op: op}), time.Now()
}

// readDone ends the span of a read named op and reports it.
func (o observedStore) readDone(ctx context.Context, op string, start time.Time, err error) {
	o.h.StoreReadEnd(ctx, observe.StoreRead{Store: "variables", Op: op}, err)
	o.done(ctx, op, start, err)
}

// done reports an operation named op.
func (o observedStore) done(ctx context.Context, op string, start time.Time, err error) {
	o.h.VariableAccessed(ctx, observe.VariableOp{Op: op, Err: err, Duration: time.Since(start)})
}

func (o observedStore) Create(ctx context.Context, v Variable) error {
	start := time.Now()
	err := o.s.Create(ctx, v)
	o.done(ctx, "Create", start, err)
	return err
}

func (o observedStore) Get(ctx context.Context, userID, id string) (Variable, error) {
	ctx, start := o.read(ctx, "Get")
	v, err := o.s.Get(ctx, userID, id)
	o.readDone(ctx, "Get", start, err)
	return v, err
}

func (o observedStore) GetByName(ctx context.Context, userID, name string) (Variable, error) {
	ctx, start := o.read(ctx, "GetByName")
	v, err := o.s.GetByName(ctx, userID, name)
	o.readDone(ctx, "GetByName", start, err)
	return v, err
}

func (o observedStore) ListByUser(ctx context.Context, userID string) ([]Variable, error) {
	ctx, start := o.read(ctx, "ListByUser")
	vs, err := o.s.ListByUser(ctx, userID)
	o.readDone(ctx, "ListByUser", start, err)
	return vs, err
}

func (o observedStore) Update(ctx context.Context, prev, next Variable) error {
	start := time.Now()
	err := o.s.Update(ctx, prev, next)
	o.done(ctx, "Update", start, err)
	return err
}

func (o observedStore) Delete(ctx context.Context, userID, id string) error {
	start := time.Now()
	err := o.s.Delete(ctx, userID, id)
	o.done(ctx, "Delete", start, err)
	return err
}

func (o observedStore) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	ctx, start := o.read(ctx, "ListCiphertexts")
	cs, err := o.s.ListCiphertexts(ctx, after, limit)
	o.readDone(ctx, "ListCiphertexts", start, err)
	return cs, err
}

func (o observedStore) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	start := time.Now()
	ok, err := o.s.SwapCiphertext(ctx, id, oldToken, newToken)
	o.done(ctx, "SwapCiphertext", start, err)
	return ok, err
}
