package variables

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyflow-dev/keyflow/secrets"
)

// unavailableStore marks every store failure that is not an outcome
// (ErrNotFound, ErrDuplicate, ErrConflict, or a *ValidationError such as
// InvalidNameError for a name the store cannot hold) as ErrUnavailable, so callers of
// the Service can tell "the database is down" from "bad request" with
// errors.Is, whatever the store.
type unavailableStore struct{ s Store }

func unavailable(err error) error {
	var ve *ValidationError
	if err == nil || errors.As(err, &ve) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrDuplicate) ||
		errors.Is(err, ErrConflict) || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (u unavailableStore) Create(ctx context.Context, v Variable) error {
	return unavailable(u.s.Create(ctx, v))
}

func (u unavailableStore) Get(ctx context.Context, userID, id string) (Variable, error) {
	v, err := u.s.Get(ctx, userID, id)
	return v, unavailable(err)
}

func (u unavailableStore) GetByName(ctx context.Context, userID, name string) (Variable, error) {
	v, err := u.s.GetByName(ctx, userID, name)
	return v, unavailable(err)
}

func (u unavailableStore) ListByUser(ctx context.Context, userID string) ([]Variable, error) {
	vs, err := u.s.ListByUser(ctx, userID)
	return vs, unavailable(err)
}

func (u unavailableStore) Update(ctx context.Context, prev, next Variable) error {
	return unavailable(u.s.Update(ctx, prev, next))
}

func (u unavailableStore) Delete(ctx context.Context, userID, id string) error {
	return unavailable(u.s.Delete(ctx, userID, id))
}

func (u unavailableStore) ListCiphertexts(ctx context.Context, after string, limit int) ([]secrets.Ciphertext, error) {
	cs, err := u.s.ListCiphertexts(ctx, after, limit)
	return cs, unavailable(err)
}

func (u unavailableStore) SwapCiphertext(ctx context.Context, id, oldToken, newToken string) (bool, error) {
	ok, err := u.s.SwapCiphertext(ctx, id, oldToken, newToken)
	return ok, unavailable(err)
}
